"""Where benchmark data lives: ``$RERANKKIT_DATA``, a ``shared/data`` checkout, or the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataNotFoundError
from ..locations import cache_home

ENV_VAR = "RERANKKIT_DATA"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def downloads_dir() -> Path:
    """Where downloaded datasets go: ``<cache home>/data`` (see :func:`rerankkit.locations.cache_home`)."""
    return cache_home() / "data"


def candidate_roots() -> list[Path]:
    """Every place searched for data, in order (``$RERANKKIT_DATA`` first when set)."""
    roots: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    checkout = _PACKAGE_DIR.parent  # the repository that contains the package (source/editable install)
    for base in (Path.cwd(), checkout):
        roots += [base / "shared" / "data", base.parent / "shared" / "data"]
    roots.append(downloads_dir())
    out: list[Path] = []
    for r in roots:
        r = r.resolve() if r.exists() else r
        if r not in out:
            out.append(r)
    return out


def data_root() -> Path:
    """The first existing data root; the download cache when none exists."""
    for r in candidate_roots():
        if r.is_dir():
            return r
    return downloads_dir()


def find_data(relative: str | Path, what: str = "", how: str = "") -> Path:
    """The first ``root/relative`` that exists among :func:`candidate_roots`, else :class:`DataNotFoundError`."""
    for r in candidate_roots():
        p = r / relative
        if p.exists():
            return p
    raise missing_data(relative, what, how)


def missing_data(relative: str | Path, what: str = "", how: str = "") -> DataNotFoundError:
    """A :class:`DataNotFoundError` listing every place searched for ``relative`` and how to get it."""
    places = ", ".join(str(r / relative) for r in candidate_roots())
    hint = how or f"put the files in one of those places, or set {ENV_VAR} to the folder that holds {Path(relative).parts[0]!r}"
    return DataNotFoundError(f"{what or 'data'} not found (looked in: {places}); to get it: {hint}")
