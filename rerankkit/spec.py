"""``RerankerSpec``: the full, resolved description of a reranker; round-trips to TOML."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .errors import ConfigError

_FIELDS = ("name", "strategy", "template", "backend", "model", "description", "paper")


@dataclass(frozen=True)
class RerankerSpec:
    """Strategy x Template x Backend (+ model), with the strategy's params and backend options."""

    strategy: str
    template: str
    backend: str
    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    paper: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "") -> RerankerSpec:
        data = dict(data)
        unknown = set(data) - {*_FIELDS, "params", "backend_options"}
        if unknown:
            raise ConfigError(f"reranker spec {name or data.get('name', '')!r}: unknown field(s) {sorted(unknown)}")
        for req in ("strategy", "template", "backend"):
            if not data.get(req):
                raise ConfigError(f"reranker spec {name or data.get('name', '')!r}: missing {req!r}")
        params = data.pop("params", {}) or {}
        opts = data.pop("backend_options", {}) or {}
        if not isinstance(params, Mapping) or not isinstance(opts, Mapping):
            raise ConfigError("'params' and 'backend_options' must be tables")
        data.setdefault("name", name)
        return cls(params=dict(params), backend_options=dict(opts), **{k: str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _FIELDS if getattr(self, k)}
        d["params"] = dict(self.params)
        d["backend_options"] = dict(self.backend_options)
        return d

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str) -> RerankerSpec:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_toml(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> RerankerSpec:
        return cls.from_toml(Path(path).read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> RerankerSpec:
        return dataclasses.replace(self, **changes)


def _drop_none(d: Any) -> Any:
    """TOML has no null: drop None values (they mean 'the default')."""
    if isinstance(d, Mapping):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d
