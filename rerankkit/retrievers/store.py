"""The document store kept beside every index, and the corpus fingerprint that names the index.

Documents are cleaned on the way in: lone surrogates (what undecodable bytes become under
``errors="surrogateescape"``) are replaced by U+FFFD and counted, so a damaged corpus never crashes
an engine and never silently changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..text import repair_text
from ..types import Doc

log = logging.getLogger(__name__)
STORE_FILE = "docs.jsonl"


@dataclass
class CorpusStats:
    """What was found while reading a corpus."""

    n_docs: int = 0
    replaced_chars: int = 0
    docs_with_replacements: int = 0
    fingerprint: str = ""
    examples: list[str] = field(default_factory=list)  # ids of the first few repaired documents


def as_corpus(corpus: object) -> Iterable[Doc | str]:
    """Accept an iterable of docs, or anything with a ``corpus()`` method (a dataset)."""
    method = getattr(corpus, "corpus", None)
    if callable(method):
        return method()  # type: ignore[no-any-return]
    if isinstance(corpus, (str, bytes)) or not isinstance(corpus, Iterable):
        raise InputError(f"corpus must be an iterable of Doc or str (or a dataset), got {type(corpus).__name__}")
    return corpus


def read_corpus(corpus: Iterable[Doc | str]) -> tuple[list[Doc], CorpusStats]:
    """Materialise ``corpus`` as cleaned :class:`Doc` objects and fingerprint it (order matters)."""
    h = hashlib.sha256()
    stats = CorpusStats()
    docs: list[Doc] = []
    seen: set[str] = set()
    for i, item in enumerate(corpus):
        if isinstance(item, str):
            item = Doc(str(i), item)
        elif not isinstance(item, Doc):
            raise InputError(f"corpus items must be Doc or str, got {type(item).__name__} at position {i}")
        docid, n1 = repair_text(item.docid)
        title, n2 = repair_text(item.title)
        text, n3 = repair_text(item.text)
        if n1 or n2 or n3:
            stats.replaced_chars += n1 + n2 + n3
            stats.docs_with_replacements += 1
            if len(stats.examples) < 5:
                stats.examples.append(docid)
            item = Doc(docid, text, title)
        if docid in seen:
            raise InputError(f"duplicate document id {docid!r} in corpus (position {i})")
        seen.add(docid)
        for part in (docid, title, text):
            b = part.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        docs.append(item)
    stats.n_docs = len(docs)
    stats.fingerprint = h.hexdigest()
    if stats.replaced_chars:
        log.warning("corpus: replaced %d undecodable character(s) in %d document(s) with U+FFFD (e.g. %s)",
                    stats.replaced_chars, stats.docs_with_replacements, ", ".join(stats.examples))
    return docs, stats


def write_store(docs: Sequence[Doc], path: Path) -> None:
    """Write ``docs`` (in order) to ``path/docs.jsonl``."""
    with open(path / STORE_FILE, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.docid, "title": d.title, "text": d.text}, ensure_ascii=False))
            f.write("\n")


def read_store(path: Path) -> list[Doc]:
    """Read the documents written by :func:`write_store`."""
    return list(_iter_store(path / STORE_FILE))


def _iter_store(file: Path) -> Iterator[Doc]:
    with open(file, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            yield Doc(r["id"], r["text"], r["title"])
