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
from .chunking import ChunkPlan, DocPolicy, plan_query, spans_of
from .lockstep import Algorithm, arun_lockstep, run_lockstep
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
    #: whether every document gets a score of its own (so it can be scored as chunks; see ``chunking``)
    pointwise_like: ClassVar[bool] = False
    #: what a score means for the server: "logit" (sigmoid gives a probability) or "probability"
    score_scale: ClassVar[str] = "logit"
    training_objective: ClassVar[str | None] = None  # the loss rerankkit.train fits this strategy with
    # identifier/label enumerations (rerankkit.prompts.formats) whose answers this strategy reads back
    format_enumerations: ClassVar[tuple[str, ...]] = ()

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

    def doc_budget(self, query: Query, backend: Backend) -> int | None:
        """The tokens one document may hold in this strategy's input (None: no limit)."""
        return self.max_doc_tokens

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
        policies: Sequence[DocPolicy | None] | None = None,
        count_tokens: bool = False,
    ) -> list[Ranking]:
        """Rerank every (query, docs) pair, advancing all queries in lock-step.

        ``policies`` (one per item, or None) override how each query's documents are cut or chunked
        (:class:`~rerankkit.strategies.chunking.DocPolicy`); ``count_tokens`` adds each query's input and
        output tokens to its metadata (``prompt_tokens``, ``generated_tokens``).
        """
        job = _Job(self, backend, items, policies, count_tokens)
        rankings, calls = run_lockstep(job.algorithms, backend, on_query_done, job.tokens)
        return job.finish(rankings, calls)

    async def arerank_many(
        self,
        backend: Backend,
        items: Sequence[tuple[Query, Sequence[Doc]]],
        on_query_done: Callable[[int], None] | None = None,
        policies: Sequence[DocPolicy | None] | None = None,
        count_tokens: bool = False,
    ) -> list[Ranking]:
        """:meth:`rerank_many` on the event loop (see :func:`~.lockstep.arun_lockstep`)."""
        import asyncio

        job = await asyncio.to_thread(_Job, self, backend, items, policies, count_tokens)  # tokenizer work
        rankings, calls = await arun_lockstep(job.algorithms, backend, on_query_done, job.tokens)
        return job.finish(rankings, calls)

    def _guarded(self, query: Query, docs: list[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        if not docs:
            return Ranking(query, ())
        ranking = yield from self.algorithm(query, docs, ctx)
        if sorted(ranking.docids) != sorted(d.docid for d in docs):
            raise RuntimeError(f"strategy {self.name!r} lost or duplicated documents for query {query.qid}")
        return ranking


class _Job:
    """One ``rerank_many`` call: the documents as scored (chunked or cut per policy), the per-query
    algorithms, and the metadata every ranking gets when they finish."""

    def __init__(self, strategy: Strategy, backend: Backend, items: Sequence[tuple[Query, Sequence[Doc]]],
                 policies: Sequence[DocPolicy | None] | None, count_tokens: bool) -> None:
        strategy.check_backend(backend)
        for _, docs in items:
            check_unique_docids(docs)
        if policies is not None and len(policies) != len(items):
            raise ConfigError(f"{len(policies)} document policies for {len(items)} queries")
        self.truncator = Truncator(backend, strategy.max_doc_tokens)
        default = DocPolicy.from_params(strategy.params)
        self.items = [(q, list(d)) for q, d in items]
        self.plans: list[ChunkPlan | None] = []
        for k, (q, docs) in enumerate(self.items):
            policy = default.overridden_by(policies[k] if policies is not None else None)
            if policy.aggregate != "none" and not strategy.pointwise_like:
                raise ConfigError(f"strategy {strategy.name!r} does not score documents one by one, so it cannot "
                                  "score them in chunks (chunking works for pointwise, crossencoder and embedding "
                                  "in query mode)")
            self.plans.append(plan_query(q, docs, policy, backend, strategy.doc_budget(q, backend),
                                         lambda t: len(spans_of(backend, t))) if policy.active else None)
        work = [(q, plan.windows if plan else docs) for (q, docs), plan in zip(self.items, self.plans)]
        self.contexts = [QueryContext(backend, self.truncator) for _ in work]
        self.algorithms = [strategy._guarded(q, d, c) for (q, d), c in zip(work, self.contexts)]
        self.tokens = [[0, 0] for _ in work] if count_tokens else None
        self.t0 = time.perf_counter()

    def finish(self, rankings: list[Ranking], calls: list[int]) -> list[Ranking]:
        wall = time.perf_counter() - self.t0
        truncated = self.truncator.truncated
        out = []
        for k, ((_, docs), ranking, n_calls, ctx, plan) in enumerate(
                zip(self.items, rankings, calls, self.contexts, self.plans)):
            meta = dict(ranking.metadata)
            meta.update(ctx.counters)
            meta["model_calls"] = n_calls
            if plan is not None:
                ranking, counts = plan.collapse(ranking, lambda d: d.prompt_text() in truncated)
                meta.update(counts)
            else:
                meta["truncated_docs"] = self.truncator.count([d.prompt_text() for d in docs])
            if self.tokens is not None:
                meta["prompt_tokens"], meta["generated_tokens"] = self.tokens[k]
            meta["batch_wall_s"] = round(wall, 4)
            out.append(Ranking(ranking.query, ranking.docs, meta))
        return out


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "rerankkit.strategies")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: register a strategy under its ``name``."""
    STRATEGIES.register(cls.name, cls)
    return cls
