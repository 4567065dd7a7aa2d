"""BRIGHT (reasoning-intensive retrieval): topics and qrels from files, documents local or from the HF hub.

BRIGHT scores a run only after removing each query's ``excluded_ids`` (documents that would leak the
answer, e.g. the same LeetCode problem); :func:`apply_exclusions` does that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from .._lazy import require
from ..errors import DataNotFoundError, InputError
from ..types import Doc, Qrel, Query, Ranking, Run
from .beir import _offline
from .dataset import Dataset
from .formats import read_jsonl_corpus
from .io import iter_lines
from .trec import read_qrels

log = logging.getLogger(__name__)
_NONE = "N/A"


class BrightDataset(Dataset):
    """One BRIGHT task. ``long=True`` uses the long-document setting (``gold_ids_long`` as qrels);
    ``qrels="fixed"`` uses Anserini's later fixed qrels instead of BRIGHT's ``gold_ids``."""

    kind = "bright"

    def __init__(self, name: str, manifest: Mapping[str, Any] | None = None, long: bool = False,
                 qrels: str = "original"):
        super().__init__(name, manifest)
        if qrels not in ("original", "fixed"):
            raise InputError(f"qrels must be 'original' or 'fixed', got {qrels!r}")
        self.long = long
        self.qrels_variant = qrels

    @cached_property
    def _examples(self) -> list[dict[str, Any]]:
        out = []
        path = self.file("examples")
        for n, line in enumerate(iter_lines(path, self.decode_stats), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not valid JSON: {exc}") from None
        return out

    def _load_queries(self) -> list[Query]:
        """Query texts as BRIGHT has them (with their line breaks), from the original examples."""
        return [Query(str(e["id"]), str(e["query"])) for e in self._examples]

    def _load_qrels(self) -> list[Qrel]:
        if self.long:
            return [Qrel(str(e["id"]), str(d), 1) for e in self._examples for d in e.get("gold_ids_long", [])]
        return read_qrels(self.file("qrels_fixed" if self.qrels_variant == "fixed" else "qrels"))

    def excluded_ids(self) -> dict[str, set[str]]:
        """qid -> doc ids to remove from that query's ranking before scoring (``N/A`` means none)."""
        return {str(e["id"]): {str(d) for d in e.get("excluded_ids", []) if d != _NONE} for e in self._examples}

    # -- documents --------------------------------------------------------------------------------
    def _local_documents(self) -> Path | None:
        role = "long_documents" if self.long else "documents"
        try:
            return self.file(role)
        except DataNotFoundError:
            return None

    def has_corpus(self) -> bool:
        return self._local_documents() is not None or not _offline()

    def corpus(self) -> Iterator[Doc]:
        """Documents from ``<root>/bright/documents/<task>.jsonl`` (``{"id", "content"}`` rows, BRIGHT's
        format), else from the Hugging Face dataset ``xlangai/BRIGHT`` when online."""
        local = self._local_documents()
        if local is not None:
            return read_jsonl_corpus(local, self.decode_stats)
        if _offline():
            role = "long_documents" if self.long else "documents"
            raise DataNotFoundError(
                f"{self.name}: no local documents ({self.location() / self.manifest['files'][role]}) and offline; "
                f"save BRIGHT's '{'long_documents' if self.long else 'documents'}' rows for split "
                f"{self.manifest.get('hf_split')!r} of {self.manifest.get('hf_dataset')} there as JSONL, or go online"
            )
        return self._hub_documents()

    def _hub_documents(self) -> Iterator[Doc]:
        hf = require("datasets", "bright", "reading BRIGHT documents from the Hugging Face hub")
        config = "long_documents" if self.long else "documents"
        rows = hf.load_dataset(self.manifest["hf_dataset"], config, split=self.manifest["hf_split"])
        for r in rows:
            yield Doc(str(r["id"]), str(r["content"]))


def apply_exclusions(run: Run, excluded: Mapping[str, set[str]]) -> Run:
    """``run`` with each query's excluded document ids removed (BRIGHT's evaluation rule).

    The remaining documents keep their order and scores; the number removed is stored in
    ``run.metadata["excluded_docs"]``.
    """
    removed = 0
    rankings = []
    for qid, r in run.items():
        drop = excluded.get(qid)
        if drop:
            kept = tuple(d for d in r.docs if d.docid not in drop)
            removed += len(r.docs) - len(kept)
            r = Ranking(r.query, kept, r.metadata)
        rankings.append(r)
    meta = dict(run.metadata)
    meta["excluded_docs"] = meta.get("excluded_docs", 0) + removed
    return Run(rankings, meta)
