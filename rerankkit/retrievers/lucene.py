"""BM25 in Lucene through Anserini (the reference implementation behind pyserini's published numbers).

Documents are written as a BEIR ``corpus.jsonl`` and indexed with ``BeirFlatCollection`` (contents
= ``title + " " + text``, Porter stemming, Lucene's English stopwords), exactly like pyserini's BEIR
flat indexes; queries are searched with ``SearchCollection -bm25`` in parallel threads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError, InputError
from ..options import option
from ..types import Doc
from ._java import run_anserini
from .base import Engine, EngineParams, Hits

log = logging.getLogger(__name__)
_SUBDIR = "lucene"
_TAG = "rerankkit"


@dataclass(frozen=True)
class LuceneParams(EngineParams):
    k1: float = option(0.9, bounds=(0, None), help="term-frequency saturation (applied at search time)")
    b: float = option(0.4, bounds=(0, 1), help="document-length normalisation (applied at search time)")
    stemmer: str = option("porter", choices=("porter", "krovetz", "none"), help="Anserini's stemmer")
    keep_stopwords: bool = option(False, help="index stopwords too")
    language: str = option("en", help="Anserini's analyzer language")
    threads: int = option(0, bounds=(0, None), help="indexing and search threads (0: one per CPU)")
    java_opts: str = option("", help='extra JVM options, e.g. "-Xmx8g"')


class LuceneEngine(Engine):
    """Lucene BM25; k1 and b apply at search time, so changing them reuses the index."""

    name = "lucene"
    Params = LuceneParams
    index_params = ("use_title", "stemmer", "keep_stopwords", "language")

    p: LuceneParams
    _path: Path | None = None
    _position: dict[str, int] = {}  # replaced (never mutated) by load()

    def _common(self) -> list[str]:
        args = ["-stemmer", self.p.stemmer, "-language", self.p.language]
        return [*args, "-keepStopwords"] if self.p.keep_stopwords else args

    def _threads(self) -> str:
        return str(self.p.threads or os.cpu_count() or 1)

    def build(self, docs: Sequence[Doc], path: Path, progress: bool = False) -> dict[str, Any]:
        collection = path / ".collection"
        collection.mkdir()
        try:
            with open(collection / "corpus.jsonl", "w", encoding="utf-8") as f:
                for d in docs:
                    if any(c in d.docid for c in "\r\n") or d.docid != d.docid.strip() or not d.docid:
                        raise InputError(f"document id {d.docid!r} cannot be indexed by Lucene "
                                         "(empty, line breaks or surrounding spaces)")
                    title = d.title if self.p.use_title else ""
                    f.write(json.dumps({"_id": d.docid, "title": title, "text": d.text}, ensure_ascii=False) + "\n")
            run_anserini("index.IndexCollection", [
                "-collection", "BeirFlatCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", str(collection), "-index", str(path / _SUBDIR), "-threads", self._threads(),
                *self._common()], self.p.java_opts.split())
        finally:
            shutil.rmtree(collection, ignore_errors=True)
        return {"anserini": "IndexCollection BeirFlatCollection"}

    def load(self, path: Path, docids: Sequence[str]) -> None:
        if not (path / _SUBDIR).is_dir():
            raise BackendError(f"no Lucene index in {path / _SUBDIR}")
        self._path = path / _SUBDIR
        self._position = {d: i for i, d in enumerate(docids)}

    def search(self, texts: Sequence[str], k: int, progress: bool = False) -> list[Hits]:
        if self._path is None:
            raise BackendError("Lucene index not loaded")
        with tempfile.TemporaryDirectory(prefix="rerankkit-lucene-") as tmp:
            topics, out = Path(tmp) / "topics.tsv", Path(tmp) / "run.txt"
            with open(topics, "w", encoding="utf-8") as f:
                for i, t in enumerate(texts):
                    f.write(f"q{i}\t{' '.join(t.split())}\n")
            run_anserini("search.SearchCollection", [
                "-index", str(self._path), "-topics", str(topics), "-topicReader", "TsvString",
                "-output", str(out), "-bm25", "-bm25.k1", str(self.p.k1), "-bm25.b", str(self.p.b),
                "-hits", str(k), "-threads", self._threads(), "-runtag", _TAG, *self._common()],
                self.p.java_opts.split())
            return self._parse(out, len(texts))

    def _parse(self, run_file: Path, n: int) -> list[Hits]:
        hits: list[Hits] = [[] for _ in range(n)]
        with open(run_file, encoding="utf-8") as f:
            for line in f:
                qid, _, rest = line.rstrip("\n").partition(" ")
                if not rest.startswith("Q0 "):
                    raise BackendError(f"unexpected line in Anserini run: {line!r}")
                docid, _rank, score, _tag = rest[3:].rsplit(" ", 3)
                hits[int(qid[1:])].append((self._position[docid], float(score)))
        return hits
