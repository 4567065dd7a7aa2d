"""A generic name registry: exact names, aliases, did-you-mean, duplicates are errors, plugins.

Plugins add entries through the entry-point group ``rerankkit.<kind>s`` (for example
``rerankkit.strategies``); each entry point loads a callable that receives the registry.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """Maps exact names (and aliases) to objects of one kind."""

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._group = entry_point_group
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, item: T, aliases: tuple[str, ...] | list[str] = ()) -> T:
        """Add ``item`` under ``name``; any clash with a name or alias raises."""
        for key in (name, *aliases):
            if key in self._items or key in self._aliases:
                raise DuplicateNameError(f"{self.kind} {key!r} is already registered")
        self._items[name] = item
        for a in aliases:
            self._aliases[a] = name
        return item

    def decorator(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def wrap(item: T) -> T:
            return self.register(name, item, aliases)

        return wrap

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (an exact name or alias), else :class:`UnknownNameError`."""
        self._load_plugins()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = [*self._items, *self._aliases]
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        raise UnknownNameError(self.kind, name, close, known)

    def get(self, name: str) -> T:
        return self._items[self.resolve(name)]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items or name in self._aliases

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_plugins()
        return iter(sorted(self._items.items()))

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, n in self._aliases.items() if n == name)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self._group or ""):
            log.debug("loading %s plugin %s", self.kind, ep.name)
            ep.load()(self)
