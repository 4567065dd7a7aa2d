"""Where rerankkit keeps the files it makes: one cache home, one folder in it per cache.

:func:`cache_home` is ``$RERANKKIT_CACHE``, else ``$XDG_CACHE_HOME/rerankkit``, else ``~/.cache/rerankkit``.
Inside it: ``models/`` (GGUF files dequantised once, :mod:`rerankkit.models`), ``data/`` (downloaded
datasets, :mod:`rerankkit.data.paths`) and ``indexes/`` (retrieval indexes,
:mod:`rerankkit.retrievers.index_cache`). Model answers (:mod:`rerankkit.answer_cache`) live where the caller
puts them (``cache=PATH``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_home(override: str | os.PathLike[str] | None = None) -> Path:
    """``override``, else ``$RERANKKIT_CACHE``, else ``$XDG_CACHE_HOME/rerankkit`` (``~/.cache/rerankkit``)."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("RERANKKIT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rerankkit"
