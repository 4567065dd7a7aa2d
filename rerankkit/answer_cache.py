"""The answer cache: a content-addressed store of model answers: SQLite in WAL mode, safe for many processes at once.

Each entry is keyed by the sha256 of everything that determines a model's answer (see
:func:`call_key`), carries a checksum over its fields, and is committed as soon as it is written, so a
process killed at any moment loses only answers it had not yet stored. An entry whose checksum does
not match (or whose value cannot be read) is reported as corrupt and treated as missing; the caller
recomputes and overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"
_CHUNK = 500  # keys per SELECT (SQLite's parameter limit is far above this)


@dataclass(frozen=True)
class Entry:
    """One stored answer: ``value`` is JSON-compatible; token counts and compute time as first measured."""

    key: str
    kind: str
    value: Any
    prompt_tokens: int = 0
    generated_tokens: int = 0
    compute_s: float = 0.0


def call_key(backend: str, model: str, options: Mapping[str, Any], kind: str, prompt: str, **params: Any) -> str:
    """sha256 over (backend, model, options, request kind, rendered prompt, request parameters)."""
    payload = {"backend": backend, "model": model, "options": dict(options), "kind": kind, "prompt": prompt,
               "params": params}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(key: str, kind: str, value: bytes, prompt_tokens: int, generated_tokens: int, compute_s: float) -> str:
    h = hashlib.sha256()
    for part in (key, kind, str(prompt_tokens), str(generated_tokens), repr(float(compute_s))):
        h.update(part.encode("utf-8") + b"\0")
    h.update(value)
    return h.hexdigest()


class CallCache:
    """The SQLite store behind :class:`~rerankkit.backends.cached.CachedBackend`.

    ``get_many`` returns the valid entries among the keys asked for (corrupt ones are logged,
    counted in ``corrupt`` and left out); ``put_many`` commits a batch in one transaction.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0):
        self.path = Path(path).expanduser()
        self.corrupt = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open(timeout)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cache {self.path} is not a usable SQLite database ({exc}); "
                              "move it away or point the cache elsewhere") from None

    def _open(self, timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: every commit survives a crash of the process
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value BLOB NOT NULL, "
                "checksum TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, generated_tokens INTEGER NOT NULL, "
                "compute_s REAL NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)"
            )
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        (version,) = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if version != SCHEMA_VERSION:
            raise ConfigError(f"cache {self.path} has schema {version}, this rerankkit writes {SCHEMA_VERSION}; "
                              "use a new cache file")
        return conn

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        """The intact entries for ``keys`` (missing and corrupt ones are absent)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, Entry] = {}
        with self._lock:
            for i in range(0, len(wanted), _CHUNK):
                part = wanted[i : i + _CHUNK]
                rows = self._conn.execute(
                    "SELECT key, kind, value, checksum, prompt_tokens, generated_tokens, compute_s FROM calls "
                    f"WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
                for key, kind, raw, checksum, pt, gt, cs in rows:
                    entry = self._decode(key, kind, raw, checksum, pt, gt, cs)
                    if entry is not None:
                        out[key] = entry
        return out

    def _decode(self, key: str, kind: str, raw: Any, checksum: str, pt: Any, gt: Any, cs: Any) -> Entry | None:
        try:
            data = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8")
            if _checksum(key, kind, data, int(pt), int(gt), float(cs)) != checksum:
                raise ValueError("checksum mismatch")
            value = json.loads(data.decode("utf-8"))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            self.mark_corrupt(key, str(exc))
            return None
        return Entry(key, kind, value, int(pt), int(gt), float(cs))

    def mark_corrupt(self, key: str, why: str) -> None:
        """Count and log a bad entry (it will be recomputed and overwritten)."""
        self.corrupt += 1
        log.warning("cache %s: corrupt entry %s (%s); recomputing it", self.path, key[:16], why)

    def put_many(self, entries: Sequence[Entry], model: str = "") -> None:
        """Store ``entries`` in one committed transaction (an existing key is overwritten)."""
        if not entries:
            return
        now = time.time()
        rows = []
        for e in entries:
            data = json.dumps(e.value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            rows.append((e.key, e.kind, data,
                         _checksum(e.key, e.kind, data, int(e.prompt_tokens), int(e.generated_tokens),
                                   float(e.compute_s)),
                         int(e.prompt_tokens), int(e.generated_tokens), float(e.compute_s), model, now))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
