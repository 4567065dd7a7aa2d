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
from ..types import Doc, Query, Ranking, check_unique_docids
from .chunking import ChunkPlan, DocPolicy, plan_query, spans_of
from .lockstep import Algorithm, arun_lockstep, run_lockstep
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
    #: whether every document gets a score of its own (so it can be scored as chunks; see ``chunking``)
    pointwise_like: ClassVar[bool] = False
    #: what a score means for the server: "logit" (sigmoid gives a probability) or "probability"
    score_scale: ClassVar[str] = "logit"

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

    def doc_budget(self, query: Query, backend: Backend) -> int | None:
        """The tokens one document may hold in this strategy's input (None: no limit)."""
        return self.max_doc_tokens

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
