"""Your own collections: a folder in BEIR layout or with TREC files, a JSONL corpus, or a TSV corpus.

``load_dataset("path/to/folder")`` (or ``"local:path"``) recognises, inside a folder:

- corpus: ``corpus.jsonl[.gz]``, ``corpus.tsv[.gz]``, ``collection.tsv``, ``docs.jsonl``, ``documents.jsonl``
- queries: ``queries.jsonl``, ``queries.tsv``, ``topics*.tsv``/``topics*.txt`` (``qid<TAB>text``)
- qrels: ``qrels/<split>.tsv`` (BEIR) or ``qrels*.txt``/``qrels*.tsv`` (TREC ``qid 0 docid grade``)
- candidates: RankGPT JSONL/JSON files with ``hits``; TREC runs ``*.run``/``run*.txt`` (texts from the corpus)

A single ``.jsonl`` or ``.tsv`` file is a corpus on its own (for indexing and retrieval).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from ..errors import DataNotFoundError, InputError
from ..types import Doc, Qrel, Query, Run
from .beir import read_queries_file
from .candidates import read_candidates
from .dataset import Dataset, judged_only
from .formats import read_jsonl_corpus, read_tsv_corpus
from .io import iter_lines
from .trec import read_qrels, read_run

log = logging.getLogger(__name__)
_CORPUS = ("corpus.jsonl", "corpus.jsonl.gz", "corpus.tsv", "corpus.tsv.gz", "collection.tsv", "collection.tsv.gz",
           "docs.jsonl", "docs.jsonl.gz", "documents.jsonl", "documents.jsonl.gz")
_QUERIES = ("queries.jsonl", "queries.jsonl.gz", "queries.tsv", "queries.tsv.gz")


class LocalDataset(Dataset):
    """A collection on disk (see the module docs for the file names it recognises)."""

    kind = "local"

    def __init__(self, path: str | Path, split: str = "test"):
        p = Path(path).expanduser()
        if not p.exists():
            raise DataNotFoundError(f"local dataset {str(path)!r} not found (no such file or folder: {p.resolve()})")
        super().__init__(f"local:{path}", {"description": f"local collection at {p.resolve()}"})
        self.path = p.resolve()
        self.split = split

    def location(self) -> Path:
        return self.path

    # -- discovery --------------------------------------------------------------------------------
    def _pick(self, names: tuple[str, ...]) -> Path | None:
        if self.path.is_file():
            return None
        return next((self.path / n for n in names if (self.path / n).exists()), None)

    @cached_property
    def _corpus_path(self) -> Path | None:
        if self.path.is_file():
            return None if self._is_candidates(self.path) else self.path
        return self._pick(_CORPUS)

    @cached_property
    def _queries_path(self) -> Path | None:
        found = self._pick(_QUERIES)
        if found is None and self.path.is_dir():
            found = next(iter(sorted(self.path.glob("topics*"))), None)
        return found

    @cached_property
    def _qrels_path(self) -> Path | None:
        if self.path.is_file():
            return None
        beir = self.path / "qrels" / f"{self.split}.tsv"
        if beir.exists():
            return beir
        return next(iter(sorted(p for p in self.path.glob("qrels*") if p.is_file())), None)

    @cached_property
    def _sources(self) -> dict[str, Path]:
        files = [self.path] if self.path.is_file() else sorted(p for p in self.path.iterdir() if p.is_file())
        out: dict[str, Path] = {}
        for p in files:
            if p in (self._corpus_path, self._queries_path, self._qrels_path):
                continue
            stem = p.name.split(".")[0] if not p.name.startswith("run.") else p.name.split(".")[1]
            if p.suffix in (".run", ".trec") or (p.name.startswith("run") and p.suffix == ".txt") or (p.name.endswith((".jsonl", ".jsonl.gz", ".json"))) and self._is_candidates(p):
                out[stem] = p
        return out

    @staticmethod
    def _is_candidates(p: Path) -> bool:
        if not p.name.endswith((".jsonl", ".jsonl.gz", ".json")):
            return False
        first = next((ln for ln in iter_lines(p) if ln.strip()), "")
        if first.lstrip().startswith("["):
            return '"hits"' in first
        try:
            return isinstance(rec := json.loads(first), dict) and "hits" in rec
        except json.JSONDecodeError:
            return False

    # -- API --------------------------------------------------------------------------------------
    def _load_qrels(self) -> list[Qrel]:
        if self._qrels_path is None:
            raise DataNotFoundError(f"{self.name}: no qrels file (qrels/{self.split}.tsv or qrels*) in {self.path}")
        return read_qrels(self._qrels_path)

    def _load_queries(self) -> list[Query]:
        if self._queries_path is None:
            raise DataNotFoundError(f"{self.name}: no queries file ({', '.join(_QUERIES)} or topics*) in {self.path}")
        qs = read_queries_file(self._queries_path)
        return judged_only(qs, self._qrels) if self._qrels_path is not None else qs

    def candidate_sources(self) -> list[str]:
        return list(self._sources)

    def _load_candidates(self, source: str) -> Run:
        p = self._sources[source]
        if self._is_candidates(p):
            return read_candidates(p, self.decode_stats)
        queries = self.query_map() if self._queries_path is not None else None
        docs = self.doc_lookup() if self._corpus_path is not None else None
        if docs is None:
            log.warning("%s: run %s has no corpus to take document texts from", self.name, p.name)
        return read_run(p, queries, docs)

    def has_corpus(self) -> bool:
        return self._corpus_path is not None

    def corpus(self) -> Iterator[Doc]:
        p = self._corpus_path
        if p is None:
            raise DataNotFoundError(f"{self.name}: no corpus file ({', '.join(_CORPUS[:6])}, ...) in {self.path}")
        if ".tsv" in p.name:
            return read_tsv_corpus(p, self.decode_stats)
        if ".jsonl" in p.name or p.suffix == ".gz":
            return read_jsonl_corpus(p, self.decode_stats)
        raise InputError(f"{p}: corpus files must be .jsonl or .tsv (optionally .gz)")
