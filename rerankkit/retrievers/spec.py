"""``RetrieverSpec``: a retriever preset (engine + params); round-trips to TOML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._toml_spec import TomlSpec


@dataclass(frozen=True)
class RetrieverSpec(TomlSpec):
    """Which engine (``bm25s``, ``lucene``, ``dense``) and its parameters."""

    _KIND = "retriever"
    _FIELDS = ("name", "engine", "description", "paper")
    _TABLES = ("params",)
    _REQUIRED = ("engine",)

    engine: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    paper: str = ""
