"""A cache of text embeddings keyed by (model key, text), in memory and optionally in a SQLite file.

Whatever embeds documents with a backend (a reranker such as E²Rank, a retriever) can share one
cache, so a document embedded once is not embedded again by the same model with the same settings.
The model key names the backend, the model and every option that changes the vectors
(:func:`model_key`); vectors are stored as float32.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

_SHARED: dict[str, EmbeddingCache] = {}
_SHARED_LOCK = threading.Lock()


def model_key(backend: Any) -> str:
    """``backend/model/options``: the identity of the vectors a backend produces."""
    opts = json.dumps(backend.options(), sort_keys=True, default=str)
    return f"{backend.name}|{backend.model_id}|{opts}"


class EmbeddingCache:
    """Vectors by (model key, text). ``path``: a SQLite file that keeps them across processes.

    The in-memory part holds at most ``max_items`` vectors (oldest dropped first); the file keeps all.
    ``hits``/``misses`` count lookups.
    """

    def __init__(self, path: str | Path | None = None, max_items: int = 20_000):
        if max_items < 0:
            raise ConfigError(f"max_items must be >= 0, not {max_items}")
        self.path = Path(path).expanduser() if path else None
        self.max_items = max_items
        self._mem: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
            self._db.commit()

    @staticmethod
    def _key(key: str, text: str) -> bytes:
        return hashlib.sha256(key.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text (None where there is none)."""
        out: list[np.ndarray | None] = []
        with self._lock:
            for text in texts:
                k = self._key(key, text)
                v = self._mem.get(k)
                if v is None and self._db is not None:
                    row = self._db.execute("SELECT v FROM vectors WHERE k = ?", (k,)).fetchone()
                    if row is not None:
                        v = np.frombuffer(row[0], dtype=np.float32).copy()
                        self._remember(k, v)
                if v is None:
                    self.misses += 1
                else:
                    self.hits += 1
                out.append(v)
        return out

    def put(self, key: str, texts: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray]) -> None:
        """Store one vector per text."""
        if len(texts) != len(vectors):
            raise ConfigError(f"{len(texts)} texts but {len(vectors)} vectors")
        rows = []
        with self._lock:
            for text, vec in zip(texts, vectors):
                k = self._key(key, text)
                v = np.ascontiguousarray(vec, dtype=np.float32).reshape(-1)
                self._remember(k, v)
                rows.append((k, v.tobytes()))
            if self._db is not None and rows:
                self._db.executemany("INSERT OR REPLACE INTO vectors (k, v) VALUES (?, ?)", rows)
                self._db.commit()

    def _remember(self, k: bytes, v: np.ndarray) -> None:
        if self.max_items == 0:
            return
        self._mem[k] = v
        self._mem.move_to_end(k)
        while len(self._mem) > self.max_items:
            self._mem.popitem(last=False)

    def __len__(self) -> int:
        return len(self._mem)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def shared_cache(path: str | Path | None = None) -> EmbeddingCache:
    """One cache per process for ``path`` (None: memory only), shared by everything that asks for it."""
    name = str(Path(path).expanduser().resolve()) if path else ""
    with _SHARED_LOCK:
        cache = _SHARED.get(name)
        if cache is None:
            cache = _SHARED[name] = EmbeddingCache(path or None)
        return cache
