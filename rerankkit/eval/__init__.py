"""Evaluation over ir-measures."""

from __future__ import annotations

from .evaluate import EvalResult, evaluate, parse_measures, resolve_qrels

__all__ = ["EvalResult", "evaluate", "parse_measures", "resolve_qrels"]
