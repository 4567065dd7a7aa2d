"""The ``Dataset`` interface every benchmark loader implements."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DataNotFoundError, InputError
from ..types import Doc, Qrel, Query, Ranking, Run, ScoredDoc
from .io import DecodeStats
from .paths import ENV_VAR, candidate_roots, missing_data

log = logging.getLogger(__name__)


class Dataset:
    """A benchmark: queries, qrels, optional candidate lists (with texts) and optional corpus.

    Subclasses implement ``_load_queries``, ``_load_qrels`` and, when they have them,
    ``_load_candidates`` and ``_iter_corpus``. Everything is read lazily and cached.
    """

    kind = "base"

    def __init__(self, name: str, manifest: Mapping[str, Any] | None = None):
        self.name = name
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.description: str = self.manifest.get("description", "")
        self.citation: str = self.manifest.get("citation", "")
        self.decode_stats = DecodeStats()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- public API -----------------------------------------------------------------------------
    def queries(self) -> list[Query]:
        """The evaluated queries (those with judgments)."""
        return list(self._queries)

    def qrels(self) -> list[Qrel]:
        return list(self._qrels)

    def query_map(self) -> dict[str, Query]:
        return {q.qid: q for q in self._queries}

    def candidate_sources(self) -> list[str]:
        """Names of the candidate lists this dataset ships (``candidates(source)``)."""
        return list(self.manifest.get("candidates", {}))

    def candidates(self, source: str | None = None) -> Run:
        """A first-stage run with document texts (for reranking); ``source`` defaults to the dataset's own."""
        sources = self.candidate_sources()
        src = source or self.manifest.get("default_candidates") or (sources[0] if sources else None)
        if src is None or src not in sources:
            from ..errors import UnknownNameError

            raise UnknownNameError(f"candidate source of {self.name}", str(src), [], sources or ["(none)"])
        run = self._load_candidates(src)
        run.metadata.setdefault("dataset", self.name)
        run.metadata.setdefault("candidates", src)
        return run

    def has_corpus(self) -> bool:
        return False

    def corpus(self) -> Iterator[Doc]:
        """Every document of the collection (streamed)."""
        raise DataNotFoundError(f"{self.name} has no document collection available here")

    @cached_property
    def num_docs(self) -> int | None:
        """Number of documents in the collection (from the manifest, else counted; None if unknown)."""
        n = self.manifest.get("num_docs")
        if n is None and self.has_corpus():
            return sum(1 for _ in self.corpus())
        return int(n) if n is not None else None

    def doc_lookup(self) -> dict[str, Doc]:
        """docid -> Doc for the whole corpus (loads it into memory); a repeated id is an :class:`InputError`."""
        out: dict[str, Doc] = {}
        for i, d in enumerate(self.corpus()):
            if d.docid in out:
                raise InputError(f"{self.name}: document id {d.docid!r} appears twice in the corpus "
                                 f"(the second time as document {i + 1})")
            out[d.docid] = d
        return out

    def excluded_ids(self) -> dict[str, set[str]]:
        """Per-query document ids to drop from runs before scoring (BRIGHT); empty for most datasets."""
        return {}

    def info(self) -> dict[str, Any]:
        """A summary for ``rerankkit datasets info``; counts queries/qrels when their files are present."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description}
        for key in ("homepage", "license", "citation", "source", "url"):
            if self.manifest.get(key):
                out[key] = self.manifest[key]
        try:
            out["location"] = str(self.location())
            out["available"] = True
        except DataNotFoundError as exc:
            out.update(available=False, missing=str(exc))
        if out["available"]:
            for key, get in (("queries", lambda: self._queries), ("qrels", lambda: self._qrels)):
                try:
                    out[key] = len(get())
                except DataNotFoundError as exc:
                    out[key] = None
                    out.setdefault("missing", str(exc))
            out["corpus"] = self.has_corpus()
        out["candidates"] = self.candidate_sources()
        if self.manifest.get("num_docs") is not None:
            out["num_docs"] = self.manifest["num_docs"]
        return out

    def verify(self) -> dict[str, str]:
        """Check the manifest's sha256 of every local file: file -> ``ok`` / ``MISMATCH`` / ``missing``."""
        out = {}
        try:
            base = self.location()
        except DataNotFoundError:
            return {f: "missing" for f in self.manifest.get("sha256", {})}
        for rel, want in self.manifest.get("sha256", {}).items():
            p = base / rel
            if not p.exists():
                out[rel] = "missing"
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[rel] = "ok" if h.hexdigest() == want else "MISMATCH"
        return out

    # -- files ----------------------------------------------------------------------------------
    def location(self) -> Path:
        """The folder holding this dataset's files (searched under every data root)."""
        return self._folder

    @cached_property
    def _folder(self) -> Path:
        folder = self.manifest.get("folder")
        if not folder:
            raise InputError(f"dataset {self.name!r} has no folder in its manifest")
        for root in candidate_roots():
            if (root / folder).is_dir():
                return root / folder
        return self._fetch_missing(folder)

    def _fetch_missing(self, folder: str) -> Path:
        raise missing_data(folder, f"dataset {self.name!r}", self._how_to_get())

    def _how_to_get(self) -> str:
        url = self.manifest.get("url") or self.manifest.get("homepage", "")
        return (f"download it ({url}) into a folder named {self.manifest.get('folder')!r} under one of those "
                f"places, or set {ENV_VAR} to the data folder that contains it")

    def file(self, role: str) -> Path:
        """The path of the manifest file with ``role`` (``topics``, ``qrels``...), checked to exist."""
        rel = self.manifest.get("files", {}).get(role)
        if rel is None:
            raise InputError(f"dataset {self.name!r} has no {role!r} file")
        return self._existing(rel, role)

    def _existing(self, rel: str, what: str) -> Path:
        p = self.location() / rel
        if p.exists():
            return p
        alt = p.with_name(p.name + ".gz") if not p.name.endswith(".gz") else p.with_name(p.name[:-3])
        if alt.exists():
            return alt
        raise missing_data(Path(self.manifest["folder"]) / rel, f"{what} file of {self.name!r}", self._how_to_get())

    # -- subclass hooks -------------------------------------------------------------------------
    @cached_property
    def _queries(self) -> list[Query]:
        return self._load_queries()

    @cached_property
    def _qrels(self) -> list[Qrel]:
        return self._load_qrels()

    def _load_queries(self) -> list[Query]:
        raise NotImplementedError

    def _load_qrels(self) -> list[Qrel]:
        raise NotImplementedError

    def _load_candidates(self, source: str) -> Run:
        raise NotImplementedError


def judged_only(queries: list[Query], qrels: list[Qrel]) -> list[Query]:
    """The queries that have at least one judgment, in their original order."""
    judged = {q.qid for q in qrels}
    return [q for q in queries if q.qid in judged]


def restrict_run(run: Run, qids: set[str]) -> Run:
    """``run`` without the queries outside ``qids`` (metadata kept)."""
    return Run((r for q, r in run.items() if q in qids), run.metadata)


def attach_texts(run: Run, docs: Mapping[str, Doc]) -> Run:
    """``run`` with each document replaced by its full record from ``docs`` (when known)."""
    return Run(
        (Ranking(r.query, tuple(ScoredDoc(docs.get(sd.docid, sd.doc), sd.score) for sd in r.docs), r.metadata)
         for r in run.values()),
        run.metadata,
    )
