"""Robustness studies: how much a reranker's result depends on its prompt's format and its input order."""

from __future__ import annotations

from .analysis import summarize
from .study import Cell, Study, StudySettings

__all__ = ["Cell", "Study", "StudySettings", "summarize"]
