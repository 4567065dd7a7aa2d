"""Presets: named reranker specs stored as TOML data (one table per preset).

Built-in presets live in ``presets/rerankers/*.toml``. Users add their own with
:func:`register_presets` or the ``RERANKKIT_PRESETS`` environment variable (paths separated by
``os.pathsep``); plugins through the ``rerankkit.presets`` entry-point group. The files are read when
the presets are first used (not at ``import rerankkit``), so a broken one is reported there.
"""

from __future__ import annotations

from pathlib import Path

from .._toml_spec import load_preset_files, register_preset_file
from ..registry import Registry
from ..spec import RerankerSpec

PRESET_DIR = Path(__file__).parent / "rerankers"

def _builtin(registry: Registry[RerankerSpec]) -> None:
    load_preset_files(PRESET_DIR, "RERANKKIT_PRESETS", lambda path: register_presets(path, registry))


RERANKER_PRESETS: Registry[RerankerSpec] = Registry("reranker preset", "rerankkit.presets", builtin=_builtin)


def register_presets(path: str | Path, registry: Registry[RerankerSpec] = RERANKER_PRESETS) -> list[str]:
    """Register every table of the TOML file ``path`` as a preset; return the names added."""
    return register_preset_file(path, registry, RerankerSpec.from_dict, "presets file")
