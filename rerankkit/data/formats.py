"""Corpus and query files: BEIR-style JSONL and (csv-aware) TSV, plain or .gz."""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..types import Doc, Query
from .io import DecodeStats, iter_lines, json_object

log = logging.getLogger(__name__)
_ID_KEYS = ("_id", "id", "docid", "doc_id", "pid")
_TEXT_KEYS = ("text", "contents", "content", "body", "passage")
_QID_KEYS = ("_id", "id", "qid", "query_id")
_QTEXT_KEYS = ("text", "query", "question")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_jsonl_corpus(path: str | Path, stats: DecodeStats | None = None) -> Iterator[Doc]:
    """Documents from JSONL: id from ``_id``/``id``/``docid``, text from ``text``/``contents``/``content``,
    optional ``title``."""
    for n, rec in _jsonl(path, stats):
        where = f"{path}:{n}"
        docid = _id(_first(rec, _ID_KEYS, where, "document id"), where, "document id")
        text = _text(_first(rec, _TEXT_KEYS, where, "document text", default=""), where, "document text")
        yield Doc(docid, text, _text(rec.get("title"), where, "title"))


def read_jsonl_queries(path: str | Path, stats: DecodeStats | None = None) -> list[Query]:
    """Queries from JSONL: id from ``_id``/``id``/``qid``, text from ``text``/``query``; ids are unique."""
    out = []
    first: dict[str, int] = {}
    for n, rec in _jsonl(path, stats):
        where = f"{path}:{n}"
        qid = _id(_first(rec, _QID_KEYS, where, "query id"), where, "query id")
        if qid in first:
            raise InputError(f"{where}: query id {qid!r} was already given on line {first[qid]}")
        first[qid] = n
        out.append(Query(qid, _text(_first(rec, _QTEXT_KEYS, where, "query text"), where, "query text")))
    return out


def read_tsv_corpus(path: str | Path, stats: DecodeStats | None = None) -> Iterator[Doc]:
    """Documents from ``docid<TAB>text[<TAB>title]`` rows, parsed as CSV (quoted fields are unquoted).

    A first row whose columns are named (``id``/``docid``/``_id`` ...) is skipped as a header.
    """
    lines = (ln + "\n" for ln in iter_lines(path, stats))
    for n, row in enumerate(csv.reader(lines, delimiter="\t"), 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if n == 1 and row[0].strip().lower() in _ID_KEYS:
            continue
        if len(row) < 2:
            raise InputError(f"{path}: row {n}: expected 'docid<TAB>text', got {row[:1]!r}")
        yield Doc(row[0].strip(), row[1], row[2] if len(row) > 2 else "")


def _jsonl(path: str | Path, stats: DecodeStats | None) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for n, line in enumerate(iter_lines(path, stats), 1):
        if line.strip():
            yield n, json_object(line, f"{path}:{n}")


def _id(value: Any, where: str, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{where}: the {what} must be a string or an integer, not {type(value).__name__}")
    return str(value)


def _text(value: Any, where: str, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{where}: the {what} must be a string, not {type(value).__name__}")
    return value


_MISSING = object()


def _first(rec: Mapping[str, Any], keys: tuple[str, ...], where: str, what: str, default: Any = _MISSING) -> Any:
    for k in keys:
        if k in rec:
            return rec[k]
    if default is not _MISSING:
        return default
    raise InputError(f"{where}: no {what} (looked for keys {', '.join(keys)})")
