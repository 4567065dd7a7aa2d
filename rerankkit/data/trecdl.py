"""TREC Deep Learning passage tracks: judged topics, NIST qrels, top-100 candidate lists with texts."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import DataNotFoundError
from ..types import Doc, Qrel, Query, Run
from .candidates import read_candidates
from .dataset import Dataset, judged_only, restrict_run
from .trec import read_qrels, read_topics


class TrecDLDataset(Dataset):
    """``trec-dl-2019/passage`` and ``trec-dl-2020/passage``: queries are the judged topics only."""

    kind = "trec-dl"

    def _load_queries(self) -> list[Query]:
        return judged_only(read_topics(self.file("topics"), self.decode_stats), self._qrels)

    def _load_qrels(self) -> list[Qrel]:
        return read_qrels(self.file("qrels"))

    def _load_candidates(self, source: str) -> Run:
        run = read_candidates(self._existing(self.manifest["candidates"][source], f"{source} candidates"),
                              self.decode_stats)
        return restrict_run(run, {q.qid for q in self._queries})

    def corpus(self) -> Iterator[Doc]:
        raise DataNotFoundError(
            f"{self.name}: the MS MARCO passage corpus ({self.manifest.get('num_docs', '8.8M')} passages) is not "
            f"bundled; rerank the candidate lists instead: load_dataset({self.name!r}).candidates('bm25')"
        )
