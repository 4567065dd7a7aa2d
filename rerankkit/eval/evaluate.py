"""``evaluate(run, qrels, measures)``: ir-measures over rerankkit records, aggregate and per query."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..types import Qrel, Run

log = logging.getLogger(__name__)
QrelsLike = Sequence[Qrel] | str | Path | Any  # list of Qrel, a dataset name/object, or a qrels file


@dataclass(frozen=True)
class EvalResult:
    """Scores of one run: the mean over queries (``aggregate``) and each query's (``per_query``)."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    measures: list[str] = field(default_factory=list)
    num_queries: int = 0  # queries averaged over
    missing_queries: int = 0  # of them, judged queries absent from the run (scored 0)

    def __getitem__(self, measure: str) -> float:
        return self.aggregate[measure]

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"aggregate": dict(self.aggregate), "num_queries": self.num_queries,
                             "missing_queries": self.missing_queries}
        if per_query:
            d["per_query"] = {q: dict(v) for q, v in self.per_query.items()}
        return d


def parse_measures(measures: str | Iterable[Any]) -> list[Any]:
    """ir-measures measure objects from strings such as ``"nDCG@10"`` or ``"R(rel=2)@100"``."""
    import ir_measures

    items = [measures] if isinstance(measures, str) else list(measures)
    if not items:
        raise InputError("give at least one measure, e.g. 'nDCG@10'")
    out = []
    for m in items:
        if not isinstance(m, str):
            out.append(m)
            continue
        try:
            out.append(ir_measures.parse_measure(m))
        except (ValueError, NameError, SyntaxError, TypeError) as exc:
            raise ConfigError(f"unknown measure {m!r} ({exc}); examples: nDCG@10, RR@10, R@100, AP, P@5") from None
    return out


def resolve_qrels(qrels: QrelsLike) -> tuple[list[Qrel], Mapping[str, set[str]]]:
    """(judgments, per-query excluded doc ids) from a list of ``Qrel``, a dataset (name), or a qrels file."""
    if isinstance(qrels, (str, Path)):
        p = Path(qrels)
        if p.is_file():
            from ..data.trec import read_qrels

            return read_qrels(p), {}
        from ..data import load_dataset

        qrels = load_dataset(str(qrels))
    if hasattr(qrels, "qrels") and callable(qrels.qrels):
        return qrels.qrels(), qrels.excluded_ids()
    items = list(qrels)
    if items and not isinstance(items[0], Qrel):
        raise InputError(f"qrels must be Qrel records, a dataset name or a qrels file, got {type(items[0]).__name__}")
    return items, {}


def evaluate(
    run: Run,
    qrels: QrelsLike,
    measures: str | Iterable[Any] = ("nDCG@10",),
    missing_as_zero: bool = True,
    queries: Iterable[str] | None = None,
) -> EvalResult:
    """Score ``run`` against ``qrels`` with ir-measures.

    ``qrels``: a list of :class:`Qrel`, a dataset name or object (its judgments; BRIGHT's
    ``excluded_ids`` are removed from the run first), or a path to a TREC/BEIR qrels file.
    The aggregate averages over every judged query; a judged query absent from the run scores 0
    (``missing_as_zero=True``: ``trec_eval -c``, the ``ir_measures`` command line, pyserini).
    ``missing_as_zero=False`` averages over the run's judged queries only (``trec_eval`` without ``-c``).
    ``queries``: score only these query ids (e.g. the first N a benchmark selected); their judged ones
    missing from the run still score 0 unless ``missing_as_zero=False``.
    """
    import ir_measures

    ms = parse_measures(measures)
    judgments, excluded = resolve_qrels(qrels)
    if excluded and any(excluded.values()):
        from ..data.bright import apply_exclusions

        run = apply_exclusions(run, excluded)
        log.info("removed %s excluded documents before scoring", run.metadata.get("excluded_docs"))
    scope: set[str] | None = None
    if queries is not None:
        scope = {str(q) for q in queries}
        judgments = [q for q in judgments if q.qid in scope]
        run = Run([r for qid, r in run.items() if qid in scope], run.metadata)
    judged = {q.qid for q in judgments}
    if not judged & set(run):
        raise InputError(f"no query of the run ({len(run)} queries) has judgments ({len(judged)} judged queries"
                         f"{f' among the {len(scope)} selected' if scope is not None else ''}): "
                         "wrong qrels for this run?")
    missing = judged - set(run)
    if missing and missing_as_zero:
        log.info("%d of %d judged queries are missing from the run; they score 0", len(missing), len(judged))
    if not missing_as_zero:
        judgments = [q for q in judgments if q.qid in run]
    irq = [ir_measures.Qrel(q.qid, q.docid, int(q.relevance)) for q in judgments]
    scored = list(run.to_ir_measures())
    per_query: dict[str, dict[str, float]] = {}
    for m in ir_measures.iter_calc(ms, irq, scored):
        per_query.setdefault(m.query_id, {})[str(m.measure)] = float(m.value)
    agg = ir_measures.calc_aggregate(ms, irq, scored)
    aggregate = {str(m): float(agg[m]) for m in ms}
    return EvalResult(aggregate, per_query, [str(m) for m in ms], len(per_query),
                      len(missing) if missing_as_zero else 0)
