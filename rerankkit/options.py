"""Options: one way to declare, describe, convert and validate settings.

Strategy parameters, retrieval-engine parameters, backend options and the training config are dataclasses
whose fields are declared with :func:`option` (a default, a one-line help text and, where they apply,
``choices`` or ``bounds``)::

    @dataclass
    class MyParams:
        k: int = option(10, help="documents to fix at the top", bounds=(1, None))
        mode: str = option("score", help="score | generate", choices=("score", "generate"))

:func:`build_options` makes an instance from raw values (command-line strings, YAML/TOML values, Python
objects): an unknown key is a :class:`~rerankkit.errors.ConfigError` naming the closest valid keys, a string
becomes the annotated type (:func:`parse_value`, the one string-to-value conversion), then choices, bounds
and the class's own ``validate()`` are checked. :func:`describe` lists the declared options (for
``rerankkit show`` and the docs). Nothing here loads a model.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, close_matches, did_you_mean

MISSING: Any = dataclasses.MISSING
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NULL = ("none", "null")


def option(default: Any = MISSING, *, help: str, choices: typing.Iterable[Any] | None = None,  # noqa: A002
           bounds: tuple[float | None, float | None] | None = None, default_factory: Any = MISSING) -> Any:
    """A dataclass field with a one-line ``help``, optional ``choices`` and inclusive ``bounds`` (lo, hi).

    ``None`` in ``bounds`` leaves that side open. A mutable default needs ``default_factory``."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if bounds is not None:
        meta["bounds"] = tuple(bounds)
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    """One declared option, as :func:`describe` reports it."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    bounds: tuple[float | None, float | None] | None = None
    required: bool = False


def describe(cls: type) -> list[OptionInfo]:
    """Every option of the dataclass ``cls``, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not MISSING:
            default, required = f.default, False
        elif f.default_factory is not MISSING:
            default, required = f.default_factory(), False
        else:
            default, required = None, True
        out.append(OptionInfo(f.name, _type_name(_hints(cls).get(f.name, Any)), default, f.metadata.get("help", ""),
                              f.metadata.get("choices", ()), f.metadata.get("bounds"), required))
    return out


def names(cls: type | None) -> list[str]:
    """The option names of ``cls`` (none for ``None``)."""
    return [f.name for f in dataclasses.fields(cls)] if cls is not None else []


def build_options(cls: type, values: Mapping[str, Any], *, owner: str, label: str, noun: str = "option") -> Any:
    """An instance of the options dataclass ``cls`` from raw ``values``, converted and validated.

    ``owner`` names the thing in errors about keys ("strategy 'pairwise'"); ``label`` starts errors about
    values ("pairwise k must be at least 1"); ``noun`` is what an entry is called ("parameter", "option")."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(unknown_key(owner, noun, str(key), list(fields)))
        kwargs[key] = check_value(cls, key, raw, label)
    for name, f in fields.items():
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{owner}: missing {noun} {name!r} ({f.metadata.get('help', '')})")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def check_value(cls: type, name: str, raw: Any, label: str) -> Any:
    """The value of option ``name`` of ``cls`` for ``raw``: converted to its type, choices and bounds checked."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    what = f"{label} {name}"
    value = parse_value(raw, _hints(cls).get(name, Any), what)
    if value is None:
        return value
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
    lo, hi = f.metadata.get("bounds") or (None, None)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            raise ConfigError(f"{what} must be between {lo} and {hi}, not {value!r}")
        raise ConfigError(f"{what} must be at {'least' if lo is not None else 'most'} "
                          f"{lo if lo is not None else hi}, not {value!r}")
    return value


def unknown_key(owner: str, noun: str, key: str, known: list[str]) -> str:
    """The message for a key ``owner`` does not declare, with the closest declared ones."""
    return f"unknown {noun} {key!r} for {owner}" + did_you_mean(close_matches(key, known, cutoff=0.6), known,
                                                                   f"its {noun}s")


def parse_value(value: Any, annotation: Any, what: str) -> Any:
    """``value`` as the type ``annotation`` says: the one string-to-value conversion of rerankkit.

    Strings are read as the annotated type (``int``, ``float``, ``bool``: 1/true/yes/on or 0/false/no/off,
    ``dict``/``list``: YAML or JSON, ``none``/``null`` (and ``""`` when ``str`` is not allowed) for an
    optional); other values must already have the type (an ``int`` widens to ``float``; a number or bool
    becomes ``str`` where a string is declared). Unknown annotations accept any value."""
    members = _members(annotation)
    if members is None:
        return value
    optional = type(None) in members
    concrete = [t for t in members if t is not type(None)]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{what} needs a value ({_type_name(annotation)})")
    if isinstance(value, str):
        low = value.strip().lower()
        if optional and (low in _NULL or (low == "" and str not in concrete)):
            return None
        for t in concrete:
            try:
                return _from_string(value, t)
            except (ValueError, TypeError):
                continue
        raise ConfigError(f"{what}: cannot read {value!r} as {_type_name(annotation)}")
    for t in concrete:
        ok, converted = _from_value(value, t)
        if ok:
            return converted
    raise ConfigError(f"{what} must be {_type_name(annotation)}, not {value!r}")


def _from_string(text: str, t: Any) -> Any:
    origin = typing.get_origin(t) or t
    if origin is bool:
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(text)
    if origin is int:
        return int(text)
    if origin is float:
        return float(text)
    if origin is str:
        return text
    if isinstance(origin, type) and issubclass(origin, (Mapping, list, tuple)):
        import yaml  # YAML is a superset of JSON: {a: 1} and {"a": 1} both read

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(text) from exc
        ok, converted = _from_value(loaded, t)
        if ok:
            return converted
    raise ValueError(text)


def _from_value(value: Any, t: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(t) or t
    if origin is Any:
        return True, value
    if origin is bool:
        return isinstance(value, bool), value
    if origin is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool), value
    if origin is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if origin is str:
        if isinstance(value, bool):
            return True, str(value).lower()
        return isinstance(value, (str, numbers.Real)), str(value)
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if origin in (list, tuple):
        ok = isinstance(value, (list, tuple))
        return ok, origin(value) if ok else value
    if isinstance(origin, type):
        return isinstance(value, origin), value
    return True, value  # a typing construct we do not check (Callable[...], Literal, ...)


def _members(annotation: Any) -> tuple[Any, ...] | None:
    """The types a value may have (``None`` when anything goes)."""
    if annotation is Any or annotation is object:
        return None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return None if Any in args else args
    return (annotation,)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: accept any value for it
        return {}


def _type_name(annotation: Any) -> str:
    members = _members(annotation)
    if members is None:
        return "any value"
    return " or ".join("none" if t is type(None) else getattr(t, "__name__", str(t)) for t in members)


__all__ = ["OptionInfo", "build_options", "check_value", "describe", "names", "option", "parse_value", "unknown_key"]
