"""Retriever presets: named :class:`RetrieverSpec` rows stored as TOML data.

Built-ins live in ``rerankkit/presets/retrievers/*.toml``. Add your own with
:func:`register_retriever_presets` or ``RERANKKIT_RETRIEVER_PRESETS`` (paths separated by ``os.pathsep``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..errors import ConfigError
from ..registry import Registry
from .spec import RetrieverSpec

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets" / "retrievers"

RETRIEVER_PRESETS: Registry[RetrieverSpec] = Registry("retriever preset", "rerankkit.retriever_presets")


def register_retriever_presets(
    path: str | Path, registry: Registry[RetrieverSpec] = RETRIEVER_PRESETS
) -> list[str]:
    """Register every table of the TOML file ``path`` as a retriever preset; return the names added."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read retriever presets file {p}: {exc}") from None
    added = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {name!r} must be a table of preset fields")
        table = dict(table)
        aliases = tuple(table.pop("aliases", ()))
        registry.register(name, RetrieverSpec.from_dict(table, name=name), aliases)
        added.append(name)
    return added


def _load_builtin() -> None:
    for f in sorted(PRESET_DIR.glob("*.toml")):
        register_retriever_presets(f)
    for extra in filter(None, os.environ.get("RERANKKIT_RETRIEVER_PRESETS", "").split(os.pathsep)):
        register_retriever_presets(extra)


_load_builtin()
