"""Routing a reranker's overrides into its spec, and describing every option a spec has.

``Reranker(preset, **overrides)``, the command line's ``--set KEY=VALUE``, a bench condition's ``overrides``
and a training config's ``overrides`` all come through :func:`apply_overrides`. A bare key is a spec field
when it names one (``model``, ``backend``, ...), else a parameter of the strategy when the strategy declares it
(``k``, ``method``), else an option of the backend when its class declares it (``dtype``, ``batch_size``);
``params.KEY`` and ``backend.KEY`` say which explicitly. Anything else is a :class:`ConfigError` naming the
closest valid keys. The values themselves are checked against the declarations by :func:`check_spec`; both
run before any model loads. The spec keeps values as they were given, so it reads back the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backends import backend_class, check_options
from .errors import ConfigError, close_matches, did_you_mean
from .options import OptionInfo, describe, names
from .spec import RerankerSpec
from .strategies import STRATEGIES

SPEC_FIELDS = ("strategy", "template", "backend", "model", "description", "paper", "name")


def apply_overrides(spec: RerankerSpec, overrides: Mapping[str, Any], *, ready_backend: bool = False) -> RerankerSpec:
    """``spec`` with ``overrides`` routed into its fields, ``params`` and ``backend_options``.

    With ``ready_backend`` (a backend instance is passed in) backend options are refused: they would be written
    into the run's spec without having changed the backend."""
    fields: dict[str, str] = {}
    params = dict(spec.params)
    opts = dict(spec.backend_options)
    strategy = str(overrides.get("strategy", spec.strategy))
    backend = str(overrides.get("backend", spec.backend))
    strategy_params = names(STRATEGIES.get(strategy).Params)
    backend_opts = _declared(backend)
    given: list[str] = []  # backend options named by the overrides
    for key, value in overrides.items():
        if key in SPEC_FIELDS:
            fields[key] = str(value)
        elif key == "params":
            params.update(value)
        elif key.startswith("params."):
            params[key.removeprefix("params.")] = value
        elif key == "backend_options":
            opts.update(value)
            given += list(value)
        elif key.startswith("backend."):
            opts[key.removeprefix("backend.")] = value
            given.append(key.removeprefix("backend."))
        elif key in strategy_params:
            params[key] = value
        elif backend_opts is None or key in backend_opts:
            opts[key] = value
            given.append(key)
        else:
            raise ConfigError(_unroutable(key, spec, strategy, strategy_params, backend, backend_opts, ready_backend))
    if ready_backend and given:
        raise ConfigError(f"backend option(s) {', '.join(map(repr, given))} do nothing with a ready backend "
                          "instance: set them where the backend is created")
    if backend != spec.backend and "backend_options" not in overrides:
        # options of the preset's backend rarely apply to another one; keep only the explicit ones
        opts = {k: v for k, v in opts.items() if k in given}
    return spec.replace(params=params, backend_options=opts, **fields)


def check_spec(spec: RerankerSpec) -> type:
    """Check ``spec``'s backend options against its backend's declaration; return the backend class.

    (The strategy checks its parameters when it is built.) Nothing is loaded but the backend's module."""
    cls = backend_class(spec.backend)
    check_options(cls, spec.backend_options)
    return cls


@dataclass(frozen=True)
class SpecOption:
    """One option of a spec: where it goes (``params`` / ``backend_options``), its declaration, its value."""

    table: str
    info: OptionInfo
    value: Any


def spec_options(spec: RerankerSpec) -> list[SpecOption]:
    """Every declared option of ``spec``'s strategy and backend with its current value, read as its type
    (the default when unset)."""
    strategy = STRATEGIES.get(spec.strategy)
    params = vars(strategy.parse_params(spec.params))
    out = [SpecOption("params", i, params[i.name]) for i in describe(strategy.Params)]
    cls = backend_class(spec.backend)
    if getattr(cls, "Options", None) is not None:
        opts = vars(check_options(cls, spec.backend_options))
        out += [SpecOption("backend_options", i, opts[i.name]) for i in describe(cls.Options)]
    return out


def _declared(backend: str) -> list[str] | None:
    """The option names backend ``backend``'s class declares (None: it declares none, anything goes)."""
    declared = getattr(backend_class(backend), "Options", None)
    return names(declared) if declared is not None else None


def _unroutable(key: str, spec: RerankerSpec, strategy: str, strategy_params: list[str], backend: str,
                backend_opts: list[str] | None, ready_backend: bool) -> str:
    preset = f" (preset {spec.name!r})" if spec.name else ""
    valid = [*SPEC_FIELDS, *strategy_params, *([] if ready_backend else backend_opts or [])]
    if ready_backend:
        where = (f"strategy {strategy!r} has no parameter {key!r}, and backend options do nothing with a ready "
                 "backend instance (set them where it is created)")
    else:
        where = f"strategy {strategy!r} has no parameter {key!r} and backend {backend!r}{preset} has no option {key!r}"
    return f"unknown option {key!r}: {where}" + did_you_mean(close_matches(key, valid, cutoff=0.6), valid, "valid keys")


__all__ = ["SPEC_FIELDS", "SpecOption", "apply_overrides", "check_spec", "spec_options"]
