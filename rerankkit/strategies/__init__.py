"""Reranking strategies. Importing this package registers the built-in ones."""

from . import crossencoder, embedding, groupwise, listwise, pairwise, pointwise, setwise  # noqa: F401  (registers)
from .base import STRATEGIES, QueryContext, Strategy, register_strategy

__all__ = ["STRATEGIES", "QueryContext", "Strategy", "register_strategy"]
