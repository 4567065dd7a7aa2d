"""The strategy contract: an algorithm over model calls, its parameters and its template schema."""

from __future__ import annotations

import dataclasses
import difflib
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..backends.base import Backend, Capability
from ..errors import CapabilityError, ConfigError
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


class Strategy(ABC):
    """Subclasses set ``name``, ``requires``, ``schema``, a ``Params`` dataclass and ``algorithm``."""

    name: ClassVar[str]
    requires: ClassVar[Capability]
    schema: ClassVar[TemplateSchema]
    Params: ClassVar[type]
    also_accepts: ClassVar[tuple[str, ...]] = ()  # other strategies whose templates fit this one's schema

    def __init__(self, template: Template, params: Mapping[str, Any] | None = None):
        if template.strategy != self.name and template.strategy not in self.also_accepts:
            raise ConfigError(f"template {template.name!r} is for strategy {template.strategy!r}, not {self.name!r}")
        self.template = template.validate(self.schema)
        self.params = build_params(self.Params, params or {}, f"strategy {self.name!r}")

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


def build_params(cls: type, values: Mapping[str, Any], owner: str) -> Any:
    """Instantiate the params dataclass ``cls`` from ``values``, with typed coercion and clear errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(fields) or 'none'}"
            raise ConfigError(f"{owner} has no parameter {key!r}{hint}")
        kwargs[key] = coerce(value, fields[key].type, f"{owner} parameter {key!r}")
    try:
        params = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    check = getattr(params, "validate", None)
    if check:
        check()
    return params


def coerce(value: Any, annotation: Any, what: str) -> Any:
    """Turn command-line strings into the annotated type (int, float, bool, str, optional)."""
    ann = str(annotation)
    if value is None or not isinstance(value, str):
        if "float" in ann and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if value.lower() in ("none", "null") and "None" in ann:
        return None
    try:
        if ann.startswith("int"):
            return int(value)
        if ann.startswith("float"):
            return float(value)
        if ann.startswith("bool"):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if ann.startswith("int |") or ann.startswith("int|"):
            return int(value)
    except ValueError:
        raise ConfigError(f"{what}: cannot read {value!r} as {ann}") from None
    return value
