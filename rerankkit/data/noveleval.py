"""NovelEval-2306: 21 questions, 20 judged search-engine candidates each."""

from __future__ import annotations

from collections.abc import Iterator

from ..types import Doc, Qrel, Query, Run
from .candidates import read_candidates
from .dataset import Dataset, judged_only
from .formats import read_tsv_corpus
from .trec import read_qrels, read_topics


class NovelEvalDataset(Dataset):
    kind = "noveleval"

    def _load_queries(self) -> list[Query]:
        return judged_only(read_topics(self.file("topics"), self.decode_stats), self._qrels)

    def _load_qrels(self) -> list[Qrel]:
        return read_qrels(self.file("qrels"))

    def _load_candidates(self, source: str) -> Run:
        """The search engine's order from ``data.json``; query ids come from the hits (``0``...``20``)."""
        return read_candidates(self._existing(self.manifest["candidates"][source], "candidates"), self.decode_stats)

    def has_corpus(self) -> bool:
        return True

    def corpus(self) -> Iterator[Doc]:
        return read_tsv_corpus(self.file("corpus"), self.decode_stats)
