"""Presets: named reranker specs stored as TOML data (one table per preset).

Built-in presets live in ``presets/rerankers/*.toml``. Users add their own with
:func:`register_presets` or the ``RERANKKIT_PRESETS`` environment variable (paths separated by
``os.pathsep``); plugins through the ``rerankkit.presets`` entry-point group.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..errors import ConfigError
from ..registry import Registry
from ..spec import RerankerSpec

PRESET_DIR = Path(__file__).parent / "rerankers"

RERANKER_PRESETS: Registry[RerankerSpec] = Registry("reranker preset", "rerankkit.presets")


def register_presets(path: str | Path, registry: Registry[RerankerSpec] = RERANKER_PRESETS) -> list[str]:
    """Register every table of the TOML file ``path`` as a preset; return the names added."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read presets file {p}: {exc}") from None
    added = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {name!r} must be a table of preset fields")
        aliases = tuple(table.pop("aliases", ()))
        registry.register(name, RerankerSpec.from_dict(table, name=name), aliases)
        added.append(name)
    return added


def _load_builtin() -> None:
    for f in sorted(PRESET_DIR.glob("*.toml")):
        register_presets(f)
    for extra in filter(None, os.environ.get("RERANKKIT_PRESETS", "").split(os.pathsep)):
        register_presets(extra)


_load_builtin()
