"""PromptReps retrieval (Zhuang et al., EMNLP 2024): an instruction-tuned LLM as a zero-shot retriever.

Every document is represented by prompting the LLM to describe it with one word (assistant turn
pre-filled with ``The word is: "``): the last-token hidden state is a dense vector (faiss, inner
product of unit vectors), the next-token logits a sparse bag of words (``log(1 + relu(logit))`` on the
document's own words, as impact scores). ``mode`` picks dense, sparse or the hybrid (``alpha`` times the
min-max normalised dense score plus ``1 - alpha`` times the sparse one, over each side's top ``depth``).

The encoding lives in :mod:`rerankkit.reps`; this engine stores the two indexes in the cached index
folder and encodes queries with the same model when searching.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConfigError
from ..options import option
from ..types import Doc
from .base import Engine, EngineParams, Hits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptRepsParams(EngineParams):
    """The LLM (through a REPRESENT backend), the prompt template, the sparse terms and how to search."""

    model: str = option("", help="the LLM: hub id, folder, GGUF file or packaged:NAME")
    backend: str = option("hf", help="a backend with REPRESENT (hidden state + next-token logits)")
    dtype: str = option("auto", help="the backend's dtype option")
    template: str = option("promptreps", help="the prompt template asking for one word")
    max_text_tokens: int = option(512, bounds=(0, None),
                                  help="documents (and queries) are cut to this many tokens before prompting (0: no cut)")
    sparse: str = option("text", choices=("text", "top"),
                         help="text: the text's own words (exact match); top: the best vocabulary terms")
    max_terms: int = option(128, bounds=(1, None), help="sparse terms kept per text")
    mode: str = option("hybrid", choices=("dense", "sparse", "hybrid"), help="which side(s) to search")
    alpha: float = option(0.5, bounds=(0, 1), help="hybrid: weight of the dense side")
    depth: int = option(1000, bounds=(1, None), help="hits per side before fusion")
    batch_size: int = option(16, bounds=(1, None), help="the backend's batch_size option")
    device: str = option("auto", help="the backend's device option")
    threads: int = option(0, bounds=(0, None), help="torch threads (0: torch's default)")


class PromptRepsEngine(Engine):
    """Builds/loads the dense + sparse PromptReps index in a folder; the LLM is loaded on first use."""

    name = "promptreps"
    Params = PromptRepsParams
    index_params = ("use_title", "model", "backend", "dtype", "template", "max_text_tokens", "sparse", "max_terms")

    p: PromptRepsParams

    def __init__(self, params: PromptRepsParams):
        super().__init__(params)
        if not params.model:
            raise ConfigError("the promptreps retriever needs model=HUB_ID_OR_PATH (or a preset such as "
                              "'promptreps-smollm2-135m')")
        from ..backends import backend_class, check_options

        check_options(backend_class(params.backend), self._backend_options())  # before any model loads
        self._encoder: Any = None
        self._index: Any = None

    def _backend_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"dtype": self.p.dtype, "batch_size": self.p.batch_size, "device": self.p.device}
        if self.p.threads:
            opts["threads"] = self.p.threads
        return opts

    @property
    def encoder(self) -> Any:
        """The :class:`~rerankkit.reps.PromptRepsEncoder` (loads the model on first use)."""
        if self._encoder is None:
            from ..backends import create_backend
            from ..reps import PromptRepsEncoder

            backend = create_backend(self.p.backend, self.p.model, **self._backend_options())
            self._encoder = PromptRepsEncoder(backend, self.p.template, self.p.max_text_tokens or None,
                                              self.p.sparse, self.p.max_terms)
        return self._encoder

    def build(self, docs: Sequence[Doc], path: Path, progress: bool = False) -> dict[str, Any]:
        from ..reps import PromptRepsIndex

        texts = [self.index_text(d) for d in docs]
        bar = _bar(len(texts), progress)
        try:
            reps = self.encoder.encode(texts, "passage", bar.update)
        finally:
            bar.close()
        index = PromptRepsIndex.from_reps(reps)
        index.save(path)
        return {"dim": int(reps.dense.shape[1]), "vocab": int(reps.sparse.shape[1]),
                "encode_s": round(reps.seconds, 3),
                "docs_per_s": round(len(texts) / reps.seconds, 3) if reps.seconds > 0 else None,
                "sparse_terms_per_doc": round(reps.sparse.nnz / max(1, len(texts)), 2),
                "sparse_fallback_docs": reps.fallbacks}

    def load(self, path: Path, docids: Sequence[str]) -> None:
        from ..reps import PromptRepsIndex

        index = PromptRepsIndex.load(path)
        if len(index) != len(docids):
            raise BackendError(f"PromptReps index holds {len(index)} documents, the store {len(docids)}")
        self._index = index

    def search(self, texts: Sequence[str], k: int, progress: bool = False) -> list[Hits]:
        if self._index is None:
            raise BackendError("PromptReps index not loaded")
        queries = self.encoder.encode(list(texts), "query")
        return self._index.search(queries, k, self.p.mode, self.p.alpha, self.p.depth)

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.backend.close()
        self._encoder = None
        self._index = None


def _bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="promptreps", unit="doc")
