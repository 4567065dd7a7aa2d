"""The name registry every kind of named thing uses: exact names, aliases, did-you-mean, duplicates are
errors, built-in entries read lazily, plugins.

``builtin`` (optional) registers the built-in entries the first time the registry is used, not at import:
presets and dataset manifests are files, and a broken one is an error where it is used. Plugins add entries
through the entry-point group ``rerankkit.<kind>s`` (for example ``rerankkit.strategies``); each entry point
loads a callable that receives the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import DuplicateNameError, UnknownNameError, close_matches

T = TypeVar("T")
log = logging.getLogger(__name__)


class _LoadedDict:
    """A dict attribute of a :class:`Registry` kept in ``storage``; reading it loads the built-in entries first."""

    def __init__(self, storage: str):
        self.storage = storage

    def __get__(self, registry: Any, owner: type | None = None) -> Any:
        if registry is None:
            return self
        registry._ensure_loaded()
        return getattr(registry, self.storage)

    def __set__(self, registry: Any, value: dict[str, Any]) -> None:
        setattr(registry, self.storage, value)


class Registry(Generic[T]):
    """Maps exact names (and aliases) to objects of one kind."""

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 builtin: Callable[[Registry[T]], None] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._alias_map: dict[str, str] = {}
        self._group = entry_point_group
        self._plugins_loaded = entry_point_group is None
        self._builtin = builtin

    # the storage, read through _ensure_loaded (tests swap these dicts to isolate their registrations)
    _items = _LoadedDict("_entries")
    _aliases = _LoadedDict("_alias_map")

    def register(self, name: str, item: T, aliases: tuple[str, ...] | list[str] = ()) -> T:
        """Add ``item`` under ``name``; any clash with a name or alias (built-ins included) raises."""
        self._load_builtin()
        return self._add(name, item, aliases)

    def _add(self, name: str, item: T, aliases: tuple[str, ...] | list[str] = ()) -> T:
        for key in (name, *aliases):
            if key in self._entries or key in self._alias_map:
                raise DuplicateNameError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = item
        for a in aliases:
            self._alias_map[a] = name
        return item

    def decorator(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def wrap(item: T) -> T:
            return self.register(name, item, aliases)

        return wrap

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (an exact name or alias), else :class:`UnknownNameError`."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = [*self._items, *self._aliases]
        raise UnknownNameError(self.kind, name, close_matches(name, known, n=5), known)

    def get(self, name: str) -> T:
        return self._items[self.resolve(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, n in self._aliases.items() if n == name)

    def _ensure_loaded(self) -> None:
        self._load_builtin()
        self._load_plugins()

    def _load_builtin(self) -> None:
        """Register the built-in entries: all or, when reading them fails, none (the error is raised at every
        use until it is fixed)."""
        if self._builtin is not None:
            load, self._builtin = self._builtin, None
            staged: Registry[T] = Registry(self.kind)
            try:
                load(staged)
            except BaseException:
                self._builtin = load
                raise
            for name, item in staged._entries.items():
                self._add(name, item, staged.aliases_of(name))

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self._group or ""):
            log.debug("loading %s plugin %s", self.kind, ep.name)
            ep.load()(self)
