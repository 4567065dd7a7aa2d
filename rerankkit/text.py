"""Text every backend can encode: lone UTF-16 surrogates are replaced by U+FFFD and counted.

A Python ``str`` may hold a lone surrogate (``"\\ud800"``): JSON allows the escape, and
``errors="surrogateescape"`` turns undecodable bytes into them. It has no UTF-8 encoding, so
tokenizers, HTTP clients and file writers fail on it. rerankkit's convention (as for undecodable
bytes in data files) is to replace each one by U+FFFD, the character a UTF-8 decoder gives for bad
bytes, and to count the replacements where the caller can see them (``replaced_chars``): the
reranker (query and document texts; ids and the caller's objects are returned unchanged), the
retriever (queries at search time; documents, ids included, when indexed, as they are stored) and
the server (``meta.warnings`` names the texts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .types import Doc, Query, Ranking, ScoredDoc

SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def lone_surrogates(s: str) -> int:
    """How many lone surrogates ``s`` holds (0 quickly for ASCII)."""
    return 0 if s.isascii() else len(SURROGATE.findall(s))


def repair_text(s: str) -> tuple[str, int]:
    """``s`` with every lone surrogate replaced by U+FFFD, and how many were replaced."""
    n = lone_surrogates(s)
    return (SURROGATE.sub(REPLACEMENT, s), n) if n else (s, 0)


def repair_items(
    items: Sequence[tuple[Query, Sequence[Doc]]],
) -> tuple[list[tuple[Query, Sequence[Doc]]], list[int]]:
    """Items whose query and document texts are encodable, and the replacements per item.

    Items without lone surrogates are passed through unchanged (no copies).
    """
    out: list[tuple[Query, Sequence[Doc]]] = []
    counts: list[int] = []
    for query, docs in items:
        qtext, n = repair_text(query.text) if isinstance(query, Query) else (None, 0)
        new_docs: list[Doc] | None = None
        for i, d in enumerate(docs):
            if not isinstance(d, Doc):
                continue  # the strategy reports wrong types
            text, a = repair_text(d.text)
            title, b = repair_text(d.title)
            if a or b:
                if new_docs is None:
                    new_docs = list(docs)
                new_docs[i] = Doc(d.docid, text, title)
                n += a + b
        if n:
            q = Query(query.qid, qtext) if qtext is not None else query
            out.append((q, new_docs if new_docs is not None else docs))
        else:
            out.append((query, docs))
        counts.append(n)
    return out, counts


def restore(ranking: Ranking, query: Query, docs: Sequence[Doc], replaced: int) -> Ranking:
    """``ranking`` (made from repaired texts) over the caller's own ``query`` and ``docs``, counted."""
    if not replaced:
        return ranking
    by_id = {d.docid: d for d in docs}
    meta = {**ranking.metadata, "replaced_chars": replaced}
    return Ranking(query, tuple(ScoredDoc(by_id[sd.docid], sd.score) for sd in ranking.docs), meta)
