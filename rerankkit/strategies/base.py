"""The strategy contract: an algorithm over model calls, its parameters and its template schema."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..backends.base import Backend, Capability, Prompt
from ..errors import CapabilityError, ConfigError
from ..options import build_options
from ..prompts.template import Template, TemplateSchema
from ..registry import Registry
from ..types import Doc, Query, Ranking, ScoredDoc, check_unique_docids
from .lockstep import Algorithm, run_lockstep
from .truncation import Truncator


@dataclass
class QueryContext:
    """What an algorithm may use besides the backend calls it yields: truncation and counters."""

    backend: Backend
    truncate: Truncator
    counters: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class TrainingPrompt:
    """One training example as the strategy shows it to the model, and the answer it should learn.

    ``positive``/``negative``: answer variants meaning relevant / not relevant (objective ``pointwise``);
    ``target``: the answer to learn by teacher forcing and ``labels`` the identifiers it ranks, each read as
    one token (objective ``first``)."""

    prompt: Prompt
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    target: str = ""
    labels: tuple[str, ...] = ()


class Strategy(ABC):
    """Subclasses set ``name``, ``requires``, ``schema``, a ``Params`` dataclass and ``algorithm``.

    ``Params`` fields are declared with :func:`rerankkit.options.option` (default, help, choices, bounds);
    a ``validate()`` method checks what spans several fields. A strategy that can be fine-tuned names its
    ``training_objective`` (see :mod:`rerankkit.train`) and builds its examples' prompts in
    :meth:`training_prompt`."""

    name: ClassVar[str]
    requires: ClassVar[Capability]
    schema: ClassVar[TemplateSchema]
    Params: ClassVar[type]
    also_accepts: ClassVar[tuple[str, ...]] = ()  # other strategies whose templates fit this one's schema
    training_objective: ClassVar[str | None] = None  # the loss rerankkit.train fits this strategy with

    def __init__(self, template: Template, params: Mapping[str, Any] | None = None):
        if template.strategy != self.name and template.strategy not in self.also_accepts:
            raise ConfigError(f"template {template.name!r} is for strategy {template.strategy!r}, not {self.name!r}")
        self.template = template.validate(self.schema)
        self.params = self.parse_params(params or {})

    @classmethod
    def parse_params(cls, values: Mapping[str, Any]) -> Any:
        """``values`` read and checked against ``Params`` (unknown keys, types, choices, bounds, ``validate()``)."""
        return build_options(cls.Params, values, owner=f"strategy {cls.name!r}", label=cls.name, noun="parameter")

    def check_backend(self, backend: Backend) -> None:
        """Raise :class:`CapabilityError` if ``backend`` lacks what this strategy needs."""
        missing = self.required_capabilities() & ~backend.capabilities
        if missing:
            from ..backends import backends_with

            raise CapabilityError(
                f"strategy {self.name!r} needs {'/'.join(missing.names())} but backend {backend.name!r} "
                f"offers {'/'.join(backend.capabilities.names()) or 'nothing'}; "
                f"backends that can: {', '.join(backends_with(self.required_capabilities()))}"
            )

    def required_capabilities(self) -> Capability:
        return self.requires

    @property
    def max_doc_tokens(self) -> int | None:
        return getattr(self.params, "max_doc_tokens", None)

    @abstractmethod
    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        """A generator: yield request batches, receive results, return the query's Ranking."""

    def first_requests(self, query: Query, docs: Sequence[Doc], backend: Any) -> list[Any]:
        """The requests this strategy sends for ``query`` before it sees any answer (what ``prompt render``
        shows). ``backend`` needs only ``count_tokens``/``truncate`` (and ``name``/``model_id``)."""
        alg = self.algorithm(query, docs, QueryContext(backend, Truncator(backend, self.max_doc_tokens)))
        try:
            return list(next(alg))
        except StopIteration:
            return []
        finally:
            alg.close()

    def training_prompt(self, query: Query, docs: Sequence[Doc], order: Sequence[int],
                        ctx: QueryContext) -> TrainingPrompt:
        """The prompt this strategy would send for ``query`` and ``docs`` (in the order shown), with the answer
        it should learn; ``order`` is the target ranking (positions of ``docs``, best first) where it applies.

        Only strategies with a ``training_objective`` implement it."""
        raise ConfigError(f"strategy {self.name!r} cannot be fine-tuned (no training objective)")

    def merge_first_stage(self, reranked: Ranking, first: Sequence[ScoredDoc]) -> Ranking:
        """Combine a query's reranking with its first-stage scores (``first``: the reranked candidates
        as the run gave them); called by ``rerank_run``. Default: the reranking as it is."""
        return reranked

    def rerank_many(
        self,
        backend: Backend,
        items: Sequence[tuple[Query, Sequence[Doc]]],
        on_query_done: Callable[[int], None] | None = None,
    ) -> list[Ranking]:
        """Rerank every (query, docs) pair, advancing all queries in lock-step."""
        self.check_backend(backend)
        for _, docs in items:
            check_unique_docids(docs)
        truncator = Truncator(backend, self.max_doc_tokens)
        contexts = [QueryContext(backend, truncator) for _ in items]
        algs = [self._guarded(q, list(d), c) for (q, d), c in zip(items, contexts)]
        t0 = time.perf_counter()
        rankings, calls = run_lockstep(algs, backend, on_query_done)
        wall = time.perf_counter() - t0
        out = []
        for (_, docs), ranking, n_calls, ctx in zip(items, rankings, calls, contexts):
            meta = dict(ranking.metadata)
            meta.update(ctx.counters)
            meta["model_calls"] = n_calls
            meta["truncated_docs"] = truncator.count([d.prompt_text() for d in docs])
            meta["batch_wall_s"] = round(wall, 4)
            out.append(Ranking(ranking.query, ranking.docs, meta))
        return out

    def _guarded(self, query: Query, docs: list[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        if not docs:
            return Ranking(query, ())
        ranking = yield from self.algorithm(query, docs, ctx)
        if sorted(ranking.docids) != sorted(d.docid for d in docs):
            raise RuntimeError(f"strategy {self.name!r} lost or duplicated documents for query {query.qid}")
        return ranking


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "rerankkit.strategies")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: register a strategy under its ``name``."""
    STRATEGIES.register(cls.name, cls)
    return cls
