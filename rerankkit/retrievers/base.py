"""The retriever protocol, the engine interface behind it, and the engine registry.

A *retriever* (what users hold) indexes a corpus and searches it; an *engine* (``bm25s``, ``lucene``,
``dense``) is the part that writes index files into a folder, loads them and scores queries. The
front door :class:`rerankkit.retrievers.Retriever` owns everything engines share: the on-disk cache,
corpus fingerprints, the document store, timings and building :class:`~rerankkit.types.Run` objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from .._lazy import LazyClass
from ..options import option
from ..registry import Registry
from ..types import Doc, Query, Run

Hits = list[tuple[int, float]]  # (position in the document store, score), best first


@runtime_checkable
class RetrieverProtocol(Protocol):
    """What every retriever offers: index a corpus once, then search it."""

    def index(self, corpus: Iterable[Doc]) -> Any: ...

    def search(self, queries: Iterable[Query | str], k: int = ...) -> Run: ...


@dataclass(frozen=True)
class EngineParams:
    """Parameters every engine has; engines subclass it, declaring each field with :func:`option`."""

    use_title: bool = option(True, help='index title + " " + text (as BEIR flat indexes do)')


class Engine(ABC):
    """Builds, loads and searches one kind of index inside a folder it is given."""

    name: ClassVar[str]
    Params: ClassVar[type[EngineParams]] = EngineParams
    #: the params that change the index files (the others only change searching)
    index_params: ClassVar[tuple[str, ...]] = ("use_title",)

    def __init__(self, params: EngineParams):
        self.params = params
        self.p: Any = params  # the same, typed by each engine as its own Params

    @abstractmethod
    def build(self, docs: Sequence[Doc], path: Path, progress: bool = False) -> dict[str, Any]:
        """Write the index for ``docs`` (in order) into the empty folder ``path``; return build facts."""

    @abstractmethod
    def load(self, path: Path, docids: Sequence[str]) -> None:
        """Open the index in ``path``; ``docids[i]`` is the id of store position ``i``."""

    @abstractmethod
    def search(self, texts: Sequence[str], k: int, progress: bool = False) -> list[Hits]:
        """Top-``k`` hits for each (non-empty) query text, best first."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to release
        """Release resources (models, processes)."""

    def index_text(self, doc: Doc) -> str:
        """The text an index sees for ``doc``."""
        if self.params.use_title and doc.title:
            return f"{doc.title} {doc.text}" if doc.text else doc.title
        return doc.text


@dataclass(frozen=True)
class EngineEntry(LazyClass):
    """Where an engine lives ("module:Class") and which pip extra it needs."""


ENGINES: Registry[EngineEntry] = Registry("retrieval engine", "rerankkit.engines")
ENGINES.register("bm25s", EngineEntry("rerankkit.retrievers.bm25:BM25sEngine", "bm25",
                                      "BM25 in pure Python (bm25s + PyStemmer); no JVM"))
ENGINES.register("lucene", EngineEntry("rerankkit.retrievers.lucene:LuceneEngine", "lucene",
                                       "BM25 in Lucene (Anserini, the jar shipped in pyserini) run as a Java process"))
ENGINES.register("dense", EngineEntry("rerankkit.retrievers.dense:DenseEngine", "dense",
                                      "sentence-transformers bi-encoder + faiss (flat inner product or HNSW)"))
ENGINES.register("promptreps", EngineEntry("rerankkit.retrievers.promptreps:PromptRepsEngine", "hf",
                                           "PromptReps: an LLM's one-word representation (dense hidden state, sparse logits, hybrid)"))
