"""rerankkit: LLM-based retrieval and reranking behind one small API.

    >>> from rerankkit import Reranker
    >>> Reranker("pointwise-smollm2-135m").rerank("what is bm25?", ["BM25 is a ranking function.", "Cats."])

Importing this package loads no deep-learning framework; backends import theirs on first use.
"""

from __future__ import annotations

import logging

from ._version import __version__
from .data import load_dataset
from .errors import (
    BackendError,
    CapabilityError,
    ConfigError,
    DataNotFoundError,
    DuplicateNameError,
    InputError,
    MissingExtraError,
    ParseError,
    RerankkitError,
    TemplateError,
    UnknownNameError,
)
from .eval import EvalResult, evaluate
from .reranker import Reranker
from .spec import RerankerSpec
from .types import Doc, Qrel, Query, Ranking, Run, ScoredDoc

logging.getLogger(__name__).addHandler(logging.NullHandler())

# retrieval is imported on first use (``rerankkit.Retriever``): engines load bm25s/faiss/torch only then
_LAZY = {"Retriever": "rerankkit.retrievers", "RetrieverSpec": "rerankkit.retrievers", "fuse": "rerankkit.retrievers"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BackendError", "CapabilityError", "ConfigError", "DataNotFoundError", "Doc", "DuplicateNameError", "EvalResult",
    "InputError", "MissingExtraError", "ParseError", "Qrel", "Query", "Ranking", "Reranker", "RerankerSpec",
    "RerankkitError", "Retriever", "RetrieverSpec", "Run", "ScoredDoc", "TemplateError", "UnknownNameError", "__version__", "evaluate", "fuse", "load_dataset",
]
