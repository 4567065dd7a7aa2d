"""``RerankerSpec``: the full, resolved description of a reranker; round-trips to TOML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._toml_spec import TomlSpec


@dataclass(frozen=True)
class RerankerSpec(TomlSpec):
    """Strategy x Template x Backend (+ model), with the strategy's params and backend options."""

    _KIND = "reranker"
    _FIELDS = ("name", "strategy", "template", "backend", "model", "description", "paper")
    _TABLES = ("params", "backend_options")
    _REQUIRED = ("strategy", "template", "backend")

    strategy: str
    template: str
    backend: str
    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    paper: str = ""
