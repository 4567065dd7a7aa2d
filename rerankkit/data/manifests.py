"""Finding and reading the dataset manifests (TOML data files in the top-level ``datasets/`` folder).

Searched in order: ``$RERANKKIT_MANIFESTS`` (folders separated by ``os.pathsep``), the ``datasets/``
folder of the repository checkout that contains the package (source and editable installs), and
``<prefix>/share/rerankkit/datasets`` (where a wheel installs them).
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path
from typing import Any

from .._toml_spec import read_toml_file
from ..errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def manifest_dirs() -> list[Path]:
    """Every folder searched for ``*.toml`` manifests, existing or not."""
    dirs = [Path(p) for p in os.environ.get("RERANKKIT_MANIFESTS", "").split(os.pathsep) if p]
    dirs.append(_PACKAGE_DIR.parent / "datasets")
    for prefix in (sys.prefix, sys.base_prefix, getattr(site, "USER_BASE", None) or ""):
        if prefix:
            dirs.append(Path(prefix) / "share" / "rerankkit" / "datasets")
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def load_manifests() -> dict[str, dict[str, Any]]:
    """name -> manifest table from the first folder that has manifests (earlier folders win per name)."""
    found: dict[str, dict[str, Any]] = {}
    for d in manifest_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            data = read_toml_file(f, "dataset manifest")
            for name, table in data.items():
                if not isinstance(table, dict) or "kind" not in table:
                    raise ConfigError(f"{f}: {name!r} must be a table with a 'kind'")
                found.setdefault(name, {**table, "manifest_file": str(f)})
    return found
