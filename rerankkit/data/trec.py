"""TREC files: topics (``qid<TAB>text``), qrels (``qid 0 docid grade``), runs (``qid Q0 docid rank score tag``)."""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..text import lone_surrogates
from ..types import Doc, Qrel, Query, Ranking, Run, ScoredDoc
from .io import DecodeStats, iter_lines

log = logging.getLogger(__name__)
_GRADE_HEADERS = {"score", "relevance", "rel", "grade", "label", "judgment", "judgement"}


def read_topics(path: str | Path, stats: DecodeStats | None = None) -> list[Query]:
    """Queries from a ``qid<TAB>text`` file (plain or .gz); blank lines are skipped.

    A line without a tab, an empty id or an id seen before is an :class:`InputError` naming the line.
    """
    out = []
    first: dict[str, int] = {}
    for n, line in enumerate(iter_lines(path, stats), 1):
        if not line.strip():
            continue
        qid, sep, text = line.partition("\t")
        qid = qid.strip()
        if not sep or not qid:
            raise InputError(f"{path}:{n}: expected 'qid<TAB>text', got {line[:80]!r}")
        if qid in first:
            raise InputError(f"{path}:{n}: query id {qid!r} was already given on line {first[qid]}")
        first[qid] = n
        out.append(Query(qid, text.strip()))
    return out

def read_qrels(path: str | Path) -> list[Qrel]:
    """Judgments from a TREC qrels file ``qid iter docid grade`` (whitespace separated; BEIR .tsv too).

    BEIR's header line (``query-id corpus-id score``) is skipped; any other malformed line, a grade
    that is not an integer, or a (query, document) pair judged twice is an :class:`InputError`.
    """
    out = []
    first: dict[tuple[str, str], int] = {}
    for n, line in enumerate(iter_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 3:  # BEIR tsv: query-id corpus-id score (with a header line)
            if n == 1 and parts[2].lower() in _GRADE_HEADERS:
                continue
            qid, docid, grade = parts
        elif len(parts) == 4:
            qid, _, docid, grade = parts
        else:
            raise InputError(f"{path}:{n}: expected 'qid 0 docid grade', got {line[:80]!r}")
        if not _is_int(grade):
            raise InputError(f"{path}:{n}: relevance grade {grade!r} is not an integer")
        if (qid, docid) in first:
            raise InputError(f"{path}:{n}: query {qid!r} judges document {docid!r} again "
                             f"(first on line {first[qid, docid]})")
        first[qid, docid] = n
        out.append(Qrel(qid, docid, int(grade)))
    return out

def read_run(
    path: str | Path,
    queries: Mapping[str, Query] | None = None,
    docs: Mapping[str, Doc] | None = None,
) -> Run:
    """A run from a TREC run file; rankings follow the file's scores (ties by rank column, then file order).

    ``queries`` and ``docs`` (by id) fill in texts; otherwise queries and documents have empty text.
    """
    rows: dict[str, list[tuple[float, int, int, str]]] = {}
    tags: set[str] = set()
    for n, line in enumerate(iter_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise InputError(f"{path}:{n}: expected 'qid Q0 docid rank score [tag]', got {line[:80]!r}")
        qid, _, docid, rank, score = parts[:5]
        if len(parts) > 5:
            tags.add(parts[5])
        try:
            value, position = float(score), int(rank)
        except ValueError:
            raise InputError(f"{path}:{n}: rank and score must be numbers, got {line[:80]!r}") from None
        if math.isnan(value):
            raise InputError(f"{path}:{n}: score is NaN (no order can be read from it)")
        rows.setdefault(qid, []).append((value, position, n, docid))
    rankings = []
    for qid, items in rows.items():
        first: dict[str, int] = {}
        for _, _, n, docid in items:  # file order
            if docid in first:
                raise InputError(f"{path}:{n}: document {docid!r} appears again for query {qid!r} "
                                 f"(first on line {first[docid]})")
            first[docid] = n
        items.sort(key=lambda t: (-t[0], t[1], t[2]))
        q = queries.get(qid) if queries else None
        sds = []
        for score, _, _, docid in items:
            d = docs.get(docid) if docs else None
            sds.append(ScoredDoc(d if d is not None else Doc(docid), score))
        rankings.append(Ranking(q or Query(qid, ""), tuple(sds)))
    meta: dict[str, Any] = {"source": str(path)}
    if len(tags) == 1:
        meta["tag"] = tags.pop()
    return Run(rankings, meta)

def write_run(run: Run, path: str | Path, tag: str = "rerankkit") -> Path:
    """Write ``run`` as a TREC run file, plus ``<path>.spec.toml`` (when ``run.metadata["spec"]``)
    and ``<path>.meta.json`` (the run's metadata with versions and time).

    Scores come from :meth:`Ranking.eval_scores` at full precision, so any tool that re-sorts by
    score sees exactly the run's order.
    """
    p = Path(path)
    if any(c.isspace() for c in tag) or not tag:
        raise InputError(f"run tag must be a non-empty word without spaces, got {tag!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        for qid, ranking in run.items():
            for rank, (sd, score) in enumerate(zip(ranking.docs, ranking.eval_scores()), 1):
                f.write(f"{_word(qid, 'query id')} Q0 {_word(sd.docid, 'doc id')} {rank} {score!r} {tag}\n")
    spec = run.metadata.get("spec")
    if spec:
        from ..spec import RerankerSpec

        s = spec if isinstance(spec, RerankerSpec) else RerankerSpec.from_dict(spec)
        s.save(spec_path(p))
    meta = {k: v for k, v in run.metadata.items() if k != "spec"}
    meta.setdefault("versions", versions())
    meta.setdefault("written", datetime.now(UTC).isoformat(timespec="seconds"))
    meta["queries"] = len(run)
    meta["tag"] = tag
    meta_path(p).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return p

def spec_path(run_path: str | Path) -> Path:
    return Path(f"{run_path}.spec.toml")

def meta_path(run_path: str | Path) -> Path:
    return Path(f"{run_path}.meta.json")

def versions() -> dict[str, str]:
    """Versions of Python, rerankkit and the heavy libraries already imported (none is imported here)."""
    from .._version import __version__

    out = {"python": platform.python_version(), "rerankkit": __version__}
    for mod in ("torch", "transformers", "vllm", "sentence_transformers", "ir_measures"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__version__", None):
            out[mod] = str(m.__version__)
    return out

def _word(s: str, what: str) -> str:
    if not s or any(c.isspace() for c in s):
        raise InputError(f"{what} {s!r} cannot be written to a TREC file (empty or contains whitespace)")
    if lone_surrogates(s):
        raise InputError(f"{what} {s!r} cannot be written to a TREC file (a lone UTF-16 surrogate is not text)")
    return s

def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True

__all__ = ["meta_path", "read_qrels", "read_run", "read_topics", "spec_path", "versions", "write_run"]
