"""Specs stored as TOML: the shared base of ``RerankerSpec`` / ``RetrieverSpec`` and their preset files.

A spec is a frozen dataclass of string fields plus a few tables (``params``, ...). :class:`TomlSpec`
gives it ``from_dict`` / ``to_dict`` / TOML round-trip / ``save`` / ``load`` / ``replace``;
:func:`register_preset_file` and :func:`load_preset_files` read preset files (one table per preset,
an optional ``aliases`` list) into a :class:`~rerankkit.registry.Registry`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import tomli_w

from .errors import ConfigError
from .registry import Registry

T = TypeVar("T")


class TomlSpec:
    """Mixin for a frozen spec dataclass whose fields are strings (``_FIELDS``) and tables (``_TABLES``)."""

    _KIND: ClassVar[str]  # "reranker", "retriever": used in error messages
    _FIELDS: ClassVar[tuple[str, ...]]  # string fields, in TOML order
    _TABLES: ClassVar[tuple[str, ...]]  # table fields, written after the strings
    _REQUIRED: ClassVar[tuple[str, ...]]  # string fields that must be non-empty

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "") -> Self:
        """Build a spec from a TOML table; ``name`` is used where the table has none."""
        data = dict(data)
        label = name or data.get("name", "")
        unknown = set(data) - {*cls._FIELDS, *cls._TABLES}
        if unknown:
            raise ConfigError(f"{cls._KIND} spec {label!r}: unknown field(s) {sorted(unknown)}")
        for req in cls._REQUIRED:
            if not data.get(req):
                raise ConfigError(f"{cls._KIND} spec {label!r}: missing {req!r}")
        tables = {}
        for key in cls._TABLES:
            value = data.pop(key, {}) or {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{cls._KIND} spec {label!r}: {key!r} must be a table")
            tables[key] = dict(value)
        data.setdefault("name", name)
        return cls(**tables, **{k: str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """The non-empty string fields, then every table (as plain dicts)."""
        d: dict[str, Any] = {k: getattr(self, k) for k in self._FIELDS if getattr(self, k)}
        for key in self._TABLES:
            d[key] = dict(getattr(self, key))
        return d

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str) -> Self:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_toml(), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Self:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")  # -sig: a BOM is not TOML
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {cls._KIND} spec {path}: {exc}") from None
        try:
            return cls.from_toml(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _drop_none(d: Any) -> Any:
    """TOML has no null: drop None values (they mean 'the default')."""
    if isinstance(d, Mapping):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def read_toml_file(path: Path, what: str) -> dict[str, Any]:
    """Parse the TOML file ``path``; an unreadable or invalid file is a ConfigError naming ``what``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def register_preset_file(
    path: str | Path, registry: Registry[T], from_dict: Callable[..., T], what: str
) -> list[str]:
    """Register every table of the TOML file ``path`` via ``from_dict(table, name=...)``; return the names."""
    p = Path(path)
    data = read_toml_file(p, what)
    added = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {name!r} must be a table of preset fields")
        table = dict(table)
        aliases = table.pop("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError(f"{p}: {name!r}: aliases must be a list of names, not {aliases!r:.60}")
        try:
            spec = from_dict(table, name=name)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        registry.register(name, spec, tuple(aliases))
        added.append(name)
    return added


def load_preset_files(folder: Path, env_var: str, register: Callable[[str | Path], Any]) -> None:
    """``register`` each ``*.toml`` of ``folder`` (sorted), then each path listed in ``$env_var``
    (a file there that cannot be read is a ConfigError naming the variable)."""
    for f in sorted(folder.glob("*.toml")):
        register(f)
    for extra in filter(None, os.environ.get(env_var, "").split(os.pathsep)):
        try:
            register(extra)
        except ConfigError as exc:
            raise ConfigError(f"${env_var}: {exc}") from None
