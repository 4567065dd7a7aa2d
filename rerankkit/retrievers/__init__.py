"""Retrievers: BM25 (bm25s or Lucene), dense (sentence-transformers + faiss), and run fusion.

    >>> from rerankkit.retrievers import Retriever
    >>> r = Retriever("bm25"); r.index(docs); run = r.search(queries, k=100)

Nothing heavy is imported here; each engine imports its libraries on first use.
"""

from __future__ import annotations

from .base import ENGINES, Engine, EngineEntry, EngineParams, RetrieverProtocol
from .fuse import fuse, interpolate, rrf
from .presets import RETRIEVER_PRESETS, register_retriever_presets
from .retriever import IndexInfo, Retriever, resolve_retriever_spec
from .spec import RetrieverSpec

__all__ = [
    "ENGINES", "Engine", "EngineEntry", "EngineParams", "IndexInfo", "RETRIEVER_PRESETS", "Retriever",
    "RetrieverProtocol", "RetrieverSpec", "fuse", "interpolate", "register_retriever_presets", "resolve_retriever_spec", "rrf",
]
