"""``RetrieverSpec``: a retriever preset (engine + params); round-trips to TOML."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import ConfigError

_FIELDS = ("name", "engine", "description", "paper")


@dataclass(frozen=True)
class RetrieverSpec:
    """Which engine (``bm25s``, ``lucene``, ``dense``) and its parameters."""

    engine: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    paper: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "") -> RetrieverSpec:
        data = dict(data)
        unknown = set(data) - {*_FIELDS, "params"}
        label = name or data.get("name", "")
        if unknown:
            raise ConfigError(f"retriever spec {label!r}: unknown field(s) {sorted(unknown)}")
        if not data.get("engine"):
            raise ConfigError(f"retriever spec {label!r}: missing 'engine'")
        params = data.pop("params", {}) or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"retriever spec {label!r}: 'params' must be a table")
        data.setdefault("name", name)
        return cls(params=dict(params), **{k: str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in _FIELDS if getattr(self, k)}
        d["params"] = dict(self.params)
        return d

    def to_toml(self) -> str:
        return tomli_w.dumps({k: v for k, v in self.to_dict().items() if v is not None})

    @classmethod
    def from_toml(cls, text: str) -> RetrieverSpec:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_toml(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> RetrieverSpec:
        return cls.from_toml(Path(path).read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> RetrieverSpec:
        return dataclasses.replace(self, **changes)
