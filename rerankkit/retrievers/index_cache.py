"""The retrieval index cache: one folder per (engine, index settings, corpus fingerprint), under
``<cache home>/indexes`` (:func:`rerankkit.locations.cache_home`).

A folder is built under a temporary name and renamed into place only after ``manifest.json`` (the
completion marker, written last) lists the size and SHA-256 of every file. Opening checks the
manifest against the files; a partial or damaged index is reported, deleted and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT = 1


def index_key(engine: str, settings: Mapping[str, Any], fingerprint: str) -> str:
    """A short stable hash of everything that determines the index files."""
    blob = json.dumps({"format": FORMAT, "engine": engine, "settings": dict(settings), "corpus": fingerprint},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def file_table(folder: Path, with_hash: bool = True) -> dict[str, dict[str, Any]]:
    """``{relative path: {size, sha256}}`` for every file under ``folder`` except the manifest."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            out[rel] = {"size": p.stat().st_size, **({"sha256": _sha256(p)} if with_hash else {})}
    return out


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_index(folder: Path, key: str | None = None, verify: str = "full") -> tuple[dict[str, Any] | None, str]:
    """Return ``(manifest, "")`` when ``folder`` holds a complete, intact index, else ``(None, reason)``.

    ``verify="full"`` re-hashes every file; ``"size"`` checks presence and sizes only.
    """
    if verify not in ("full", "size"):
        raise ConfigError(f"verify must be 'full' or 'size', got {verify!r}")
    mf = folder / MANIFEST
    if not folder.is_dir():
        return None, "missing"
    if not mf.is_file():
        return None, "no manifest (an interrupted build)"
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable manifest ({exc})"
    if manifest.get("format") != FORMAT:
        return None, f"index format {manifest.get('format')} (this version writes {FORMAT})"
    if key is not None and manifest.get("key") != key:
        return None, "manifest key does not match the folder"
    for rel, want in files.items():
        p = folder / rel
        if not p.is_file():
            return None, f"file {rel} is missing"
        if p.stat().st_size != want.get("size"):
            return None, f"file {rel} has the wrong size"
        if verify == "full" and _sha256(p) != want.get("sha256"):
            return None, f"file {rel} fails its checksum"
    return manifest, ""


def build_index(
    root: Path, engine: str, key: str, build: Callable[[Path], dict[str, Any]], manifest: Mapping[str, Any]
) -> tuple[Path, dict[str, Any]]:
    """Build into a temporary folder with ``build(folder)``, write the manifest last, move into place.

    ``build`` returns facts about the build (timings, counts) stored in the manifest under ``"build"``.
    If another process finished the same index first, its (intact) copy is kept.
    """
    final = root / engine / key
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        facts = build(tmp)
        facts = {**facts, "build_s": round(time.perf_counter() - t0, 3)}
        data = {**manifest, "format": FORMAT, "engine": engine, "key": key, "build": facts,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": file_table(tmp)}
        _write_atomic(tmp / MANIFEST, json.dumps(data, indent=1, sort_keys=True, default=str))
        if final.exists():
            existing, _ = check_index(final, key, verify="size")
            if existing is not None:
                log.info("index %s was finished by another process; keeping it", final)
                shutil.rmtree(tmp, ignore_errors=True)
                return final, existing
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final, data
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_index(folder: Path, reason: str) -> None:
    """Delete an index folder that failed its check (logged, so a rebuild is never silent)."""
    log.warning("index %s is unusable (%s); rebuilding it", folder, reason)
    shutil.rmtree(folder, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
