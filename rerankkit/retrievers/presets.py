"""Retriever presets: named :class:`RetrieverSpec` rows stored as TOML data.

Built-ins live in ``rerankkit/presets/retrievers/*.toml``. Add your own with
:func:`register_retriever_presets` or ``RERANKKIT_RETRIEVER_PRESETS`` (paths separated by ``os.pathsep``).
The files are read when the presets are first used.
"""

from __future__ import annotations

from pathlib import Path

from .._toml_spec import load_preset_files, register_preset_file
from ..registry import Registry
from .spec import RetrieverSpec

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets" / "retrievers"

def _builtin(registry: Registry[RetrieverSpec]) -> None:
    load_preset_files(PRESET_DIR, "RERANKKIT_RETRIEVER_PRESETS", lambda path: register_retriever_presets(path, registry))


RETRIEVER_PRESETS: Registry[RetrieverSpec] = Registry("retriever preset", "rerankkit.retriever_presets",
                                                      builtin=_builtin)


def register_retriever_presets(
    path: str | Path, registry: Registry[RetrieverSpec] = RETRIEVER_PRESETS
) -> list[str]:
    """Register every table of the TOML file ``path`` as a retriever preset; return the names added."""
    return register_preset_file(path, registry, RetrieverSpec.from_dict, "retriever presets file")
