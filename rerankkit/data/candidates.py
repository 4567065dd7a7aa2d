"""RankGPT-style candidate files: ``{"query", "hits": [{"docid", "content", "qid", "rank", "score"}]}``.

One JSON object per line (plain or .gz; the last line may lack its newline), or one JSON array of
such objects (NovelEval's ``data.json``). Becomes a :class:`Run` whose documents carry their texts.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..text import lone_surrogates
from ..types import Doc, Query, Ranking, Run, ScoredDoc
from .io import DecodeStats, iter_lines, json_object

log = logging.getLogger(__name__)


def read_candidates(path: str | Path, stats: DecodeStats | None = None) -> Run:
    """Read a candidate file into a :class:`Run` (file order is the ranking; scores as given).

    A record's query id is its ``qid`` field, else its first hit's ``qid``, else its position.
    Undecodable bytes are replaced and counted in ``stats`` (and ``run.metadata["replaced_bytes"]``).
    """
    st = stats if stats is not None else DecodeStats()
    rankings = []
    first: dict[str, str] = {}
    for i, (where, rec) in enumerate(_records(Path(path), st)):
        ranking = _ranking(rec, i, where)
        qid = ranking.query.qid
        if qid in first:
            raise InputError(f"{where}: query id {qid!r} was already given at {first[qid]}")
        first[qid] = where
        rankings.append(ranking)
    meta: dict[str, Any] = {"source": str(path)}
    if st.replaced:
        meta["replaced_bytes"] = st.replaced
    return Run(rankings, meta)


def _records(path: Path, stats: DecodeStats) -> Iterator[tuple[str, Mapping[str, Any]]]:
    lines = iter_lines(path, stats)
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        return
    if first.lstrip().startswith("["):  # a JSON array, possibly spread over many lines
        text = "\n".join([first, *lines])
        # wrapped in an object (no newline added), so a syntax error's line is the file's
        data = json_object('{"records": ' + text + "}", str(path), whole_file=True)["records"]
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON array of records")
        for i, rec in enumerate(data):
            yield f"{path}[{i}]", _check(rec, f"{path}[{i}]")
        return
    n = 0
    for ln in _chain(first, lines):
        n += 1
        if not ln.strip():
            continue
        where = f"{path}:{n}"
        yield where, _check(json_object(ln, where), where)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _check(rec: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(rec, Mapping) or "query" not in rec or not isinstance(rec.get("hits"), list):
        raise InputError(f"{where}: expected an object with 'query' and a 'hits' list")
    if not isinstance(rec["query"], str):
        raise InputError(f"{where}: 'query' must be a string, not {type(rec['query']).__name__}")
    return rec


def _ranking(rec: Mapping[str, Any], index: int, where: str) -> Ranking:
    hits = rec["hits"]
    for j, h in enumerate(hits):
        if not isinstance(h, Mapping) or "docid" not in h:
            raise InputError(f"{where}: hit {j} has no 'docid'")
    qid = rec.get("qid", hits[0].get("qid") if hits else None)
    if qid is None:
        qid = str(index)
        log.warning("%s: no qid for query %r; using its position %s", where, rec["query"][:40], qid)
    qid = _id(qid, f"{where}: 'qid'")
    docs = []
    for j, h in enumerate(hits):
        what = f"{where}: hit {j}"
        text = _text(h.get("content", h.get("text")), f"{what} 'content'")
        title = _text(h.get("title"), f"{what} 'title'")
        score = _score(h.get("score"), f"{what} 'score'")
        docs.append(ScoredDoc(Doc(_id(h["docid"], f"{what} 'docid'"), text, title),
                              score if score is not None else float(len(hits) - j)))
    try:
        return Ranking(Query(qid, rec["query"]), tuple(docs))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _id(value: Any, what: str) -> str:
    """An id: a string, or an integer (TREC DL's candidate files give numeric qids)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{what} must be a string or an integer, not {type(value).__name__}")
    return str(value)


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, not {type(value).__name__}")
    return value


def _score(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        score = float(value) if not isinstance(value, bool) and isinstance(value, (int, float, str)) else None
    except (ValueError, OverflowError):
        score = None
    if score is None or math.isnan(score):
        raise InputError(f"{what} must be a number, not {str(value)[:40]!r}")
    return score


def write_candidates(run: Run, path: str | Path) -> Path:
    """Write ``run`` in the same JSONL format (texts included), so it can be read back."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        for qid, r in run.items():
            hits = [
                {"docid": sd.docid, "content": sd.doc.text, **({"title": sd.doc.title} if sd.doc.title else {}),
                 "qid": qid, "rank": i, "score": s}
                for i, (sd, s) in enumerate(zip(r.docs, r.eval_scores()), 1)
            ]
            record = {"query": r.query.text, "qid": qid, "hits": hits}
            line = json.dumps(record, ensure_ascii=False)
            if lone_surrogates(line):  # no UTF-8 for them: \u-escape this record, so it reads back the same
                line = json.dumps(record)
            f.write(line + "\n")
    return p
