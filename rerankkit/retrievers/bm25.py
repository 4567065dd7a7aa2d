"""BM25 without a JVM: bm25s (eager sparse scoring) with English stopwords and PyStemmer stemming."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._lazy import require
from ..errors import ConfigError
from ..options import option
from ..types import Doc
from .base import Engine, EngineParams, Hits

log = logging.getLogger(__name__)
_SUBDIR = "bm25s"


@dataclass(frozen=True)
class BM25sParams(EngineParams):
    method: str = option("lucene", choices=("lucene", "robertson", "atire", "bm25l", "bm25+"),
                         help="the BM25 variant (bm25s names)")
    k1: float = option(0.9, bounds=(0, None), help="term-frequency saturation")
    b: float = option(0.4, bounds=(0, 1), help="document-length normalisation")
    delta: float = option(0.5, help="bm25l / bm25+ only: the added term-frequency floor")
    stopwords: str = option("en", help='stopword list: a language code of bm25s, or "" for none')
    stemmer: str = option("english", help='a PyStemmer language, or "" for no stemming')
    lower: bool = option(True, help="lowercase before tokenising")
    threads: int = option(0, bounds=(0, None), help="threads for indexing and search (0: one per CPU)")


class BM25sEngine(Engine):
    """Scores are precomputed per (term, document) at index time, so k1/b/method are index settings."""

    name = "bm25s"
    Params = BM25sParams
    index_params = ("use_title", "method", "k1", "b", "delta", "stopwords", "stemmer", "lower")

    p: BM25sParams
    _model: Any = None
    _docids: Sequence[str] = ()
    _stemmer: Any = None

    def _tokenize(self, texts: Sequence[str], return_ids: bool, progress: bool) -> Any:
        bm25s = require("bm25s", "bm25", "the bm25 retriever")
        if self._stemmer is None and self.p.stemmer:
            stemmer_mod = require("Stemmer", "bm25", "bm25 stemming")
            try:
                self._stemmer = stemmer_mod.Stemmer(self.p.stemmer)
            except KeyError:
                raise ConfigError(f"unknown stemmer {self.p.stemmer!r}; PyStemmer knows "
                                  f"{sorted(stemmer_mod.algorithms())}") from None
        return bm25s.tokenize(list(texts), lower=self.p.lower, stopwords=self.p.stopwords or None,
                              stemmer=self._stemmer, return_ids=return_ids, show_progress=progress)

    def build(self, docs: Sequence[Doc], path: Path, progress: bool = False) -> dict[str, Any]:
        bm25s = require("bm25s", "bm25", "the bm25 retriever")
        tokens = self._tokenize([self.index_text(d) for d in docs], True, progress)
        model = bm25s.BM25(method=self.p.method, k1=self.p.k1, b=self.p.b, delta=self.p.delta)
        model.index(tokens, show_progress=progress)
        model.save(str(path / _SUBDIR), show_progress=False)
        return {"vocab_size": len(tokens.vocab)}

    def load(self, path: Path, docids: Sequence[str]) -> None:
        bm25s = require("bm25s", "bm25", "the bm25 retriever")
        self._model = bm25s.BM25.load(str(path / _SUBDIR), show_progress=False)
        if self._model.scores["num_docs"] != len(docids):
            raise ValueError(f"index holds {self._model.scores['num_docs']} documents, the store {len(docids)}")
        self._docids = docids

    def search(self, texts: Sequence[str], k: int, progress: bool = False) -> list[Hits]:
        import numpy as np

        model = self._model
        vocab = model.vocab_dict
        token_lists = self._tokenize(texts, False, progress)
        n = model.scores["num_docs"]
        docids = self._docids

        def one(tokens: list[str]) -> Hits:
            ids = [vocab[t] for t in tokens if t and t in vocab]
            if not ids:
                return []
            scores = model.get_scores_from_ids(ids)
            floor = 0.0 if k >= n else max(0.0, float(-np.partition(-scores, k - 1)[k - 1]))
            # every document at or above the k-th score (ties included), then a deterministic cut;
            # BM25 retrieves only documents that share a term with the query (score > 0)
            top = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
            order = sorted(top.tolist(), key=lambda i: (-float(scores[i]), docids[i]))[:k]
            return [(i, float(scores[i])) for i in order]

        workers = self.p.threads or os.cpu_count() or 1
        if workers == 1 or len(token_lists) < 2:
            return [one(t) for t in token_lists]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, token_lists))
