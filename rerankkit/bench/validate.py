"""Checks of the names a benchmark config uses, each raising ``ConfigError`` that starts with FILE:LINE."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RerankkitError, UnknownNameError


class Where:
    """Formats ``FILE:LINE`` for error messages."""

    def __init__(self, path: Path):
        self.path = path

    def at(self, line: int) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def resolve_dataset(name: str, at: str, base: Path) -> str:
    """The registry name of ``name`` (aliases allowed), or ``local:ABSPATH`` for a local collection."""
    from ..data import DATASETS

    if name in DATASETS:
        return DATASETS.resolve(name)
    local = name[len("local:"):] if name.startswith("local:") else name
    p = (base / local).expanduser()
    if name.startswith("local:") or (p.exists() and ("/" in local or p.suffix)):
        if not p.exists():
            raise ConfigError(f"{at}: local dataset {local!r} not found (looked at {p.resolve()})")
        return f"local:{p.resolve()}"
    try:
        return DATASETS.resolve(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{at}: {exc}") from None


def resolve_measure(measure: str, at: str) -> str:
    """The canonical ir-measures name of ``measure`` (``nDCG@10``, ``RR(rel=2)@10`` ...)."""
    from ..eval.evaluate import parse_measures

    try:
        return str(parse_measures([measure])[0])
    except RerankkitError as exc:
        raise ConfigError(f"{at}: {exc}") from None


def resolve_preset(name: str, overrides: Mapping[str, Any], at_name: str, at_overrides: str) -> str:
    """The canonical preset name; also builds the reranker (strategy, template, parameters, backend options:
    every override checked) without a model."""
    from ..backends import testing_backends
    from ..presets import RERANKER_PRESETS
    from ..reranker import Reranker

    try:
        canonical = RERANKER_PRESETS.resolve(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{at_name}: {exc}") from None
    try:
        spec = Reranker(canonical, **dict(overrides)).spec
    except RerankkitError as exc:
        raise ConfigError(f"{at_overrides}: reranker preset {canonical!r}: {exc}") from None
    if not spec.model and spec.backend not in testing_backends():
        raise ConfigError(f"{at_name}: reranker preset {canonical!r} names no model; "
                          "add overrides: {model: HUB_ID_OR_PATH}")
    return canonical


def resolve_retriever(name: str, at: str, overrides: Mapping[str, Any] | None = None, at_overrides: str = "") -> str:
    """The canonical retriever preset name (needs the retrieval layer, ``rerankkit.retrievers``); its
    ``overrides`` are checked against the engine's parameters (nothing is indexed or loaded)."""
    try:
        mod = importlib.import_module("rerankkit.retrievers")
    except ModuleNotFoundError as exc:
        if exc.name != "rerankkit.retrievers":
            raise
        mod = None
    if not hasattr(mod, "RETRIEVER_PRESETS"):  # absent, or a leftover folder without the package
        raise ConfigError(f"{at}: retriever {name!r}: this rerankkit has no retrieval layer "
                          "(rerankkit.retrievers); use 'candidates' (a dataset's list or a file) instead")
    try:
        canonical = str(mod.RETRIEVER_PRESETS.resolve(name))
    except UnknownNameError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    try:
        mod.resolve_retriever_spec(canonical, overrides or {})
    except RerankkitError as exc:
        raise ConfigError(f"{at_overrides or at}: retriever preset {canonical!r}: {exc}") from None
    return canonical
