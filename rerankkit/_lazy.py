"""Lazy imports: optional dependencies that fail with the pip extra to install, and classes named
``"module:Class"`` (backends, retrieval engines) imported on first use."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .errors import MissingExtraError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``rerankkit[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module exists but one of *its* imports is broken: show the real error
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc


def load_object(target: str) -> Any:
    """The object named ``"package.module:Name"`` (its module imported now)."""
    module, sep, name = target.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected 'module:Name', got {target!r}")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class LazyClass:
    """A class named ``"module:Class"``, imported on first use; ``extra``: the pip extra its code needs."""

    target: str
    extra: str | None = None
    description: str = ""

    def load(self) -> type:
        return load_object(self.target)
