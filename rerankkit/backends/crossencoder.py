"""Cross-encoders (sequence-classification rerankers) through sentence-transformers' ``CrossEncoder``.

The model reads a (query, document) pair and its classification head gives one relevance logit:
ms-marco-MiniLM, bge-reranker, mxbai-rerank-v1, jina-reranker-v2 and the like. This backend offers
``Capability.RELEVANCE`` and returns the *raw* logits (the head's output, no activation); the
``crossencoder`` strategy applies the activation its preset names (sigmoid or none), so a score is
exactly ``CrossEncoder.predict`` with that activation. ``predict`` batches pairs sorted by length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import BackendError, ConfigError
from ..models import resolve_model
from ..options import option
from .base import BackendBase, Capability, Prompt
from .precision import DTYPE_NAMES, resolve_dtype
from .tokenizing import LocalTokenizer, LocalTokenizerMethods

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrossEncoderOptions:
    """The crossencoder backend's options."""

    dtype: str = option("auto", help="weights: fp32 | bf16 | fp16 | auto (resolved as the hf backend resolves it)")
    device: str = option("auto", help="auto | cpu | cuda | cuda:I")
    batch_size: int = option(32, bounds=(1, None), help="pairs per forward pass")
    max_length: int | None = option(None, bounds=(1, None),
                                    help="tokens of a pair; longer pairs are cut as the tokenizer's longest_first "
                                         "truncation cuts them (none: the model's own limit)")
    trust_remote_code: bool = option(False, help="run the model repository's own code (jina-reranker-v2)")
    revision: str | None = option(None, help="hub revision (branch, tag or commit)")
    threads: int | None = option(None, bounds=(0, None), help="torch CPU threads (none or 0: torch's default)")

    def validate(self) -> None:
        if str(self.dtype).lower() not in DTYPE_NAMES:
            raise ConfigError(f"crossencoder dtype must be one of {', '.join(DTYPE_NAMES)}, not {self.dtype!r}")


class CrossEncoderBackend(LocalTokenizerMethods, BackendBase):
    """A sentence-transformers ``CrossEncoder`` from a hub id or a local folder. Options:
    :class:`CrossEncoderOptions`."""

    backend_name = "crossencoder"
    Options = CrossEncoderOptions
    capabilities = Capability.RELEVANCE

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        o: CrossEncoderOptions = self.opts
        torch = self.torch = require("torch", "crossencoder", "the cross-encoder backend")
        st = require("sentence_transformers", "crossencoder", "the cross-encoder backend")
        if o.threads:
            torch.set_num_threads(o.threads)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if o.device == "auto" else o.device
        choice = resolve_dtype(o.dtype, self.device, torch)
        self.dtype_name = name = choice.name
        self.batch_size = o.batch_size
        path = resolve_model(model).path
        transformers = require("transformers", "crossencoder", "the cross-encoder backend")
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        try:
            self.model = st.CrossEncoder(path, device=self.device, max_length=o.max_length, revision=o.revision,
                                         trust_remote_code=o.trust_remote_code,
                                         model_kwargs={dtype_key: getattr(torch, name)},
                                         activation_fn=torch.nn.Identity())
        except OSError as exc:
            raise BackendError(f"cannot load cross-encoder {model!r} from {path!r}: {exc}") from None
        self.num_labels = int(self.model.num_labels)
        if self.num_labels not in (1, 2):
            raise ConfigError(f"{model!r} has {self.num_labels} labels; a reranking cross-encoder has 1 (a relevance "
                              "logit) or 2 (not relevant / relevant)")
        self.tokenizer = self.model.tokenizer
        self.tok = LocalTokenizer(self.tokenizer, chat_template=False)
        log.info("crossencoder backend: %s (%d label(s), %s: %s, %s)", model, self.num_labels, name, choice.reason,
                 self.device)

    def options(self) -> dict[str, Any]:
        return {"dtype": self.dtype_name, "max_length": self.max_input_tokens(), "num_labels": self.num_labels}

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, one per pair; a two-label head gives logit(relevant) - logit(not relevant)."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        out = self.model.predict([list(p) for p in pairs], batch_size=self.batch_size, show_progress_bar=False,
                                 activation_fn=self.torch.nn.Identity(), convert_to_numpy=True)
        logits = np.asarray(out, dtype=np.float64)
        if self.num_labels == 2:
            logits = logits[:, 1] - logits[:, 0]
        self.usage.add(len(pairs), sum(self.count_pair_tokens(pairs)))
        return logits.reshape(-1)

    def count_pair_tokens(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """Tokens of each pair as the model reads it (special tokens included, cut at ``max_length``)."""
        enc = self.tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation=True,
                             max_length=self.max_input_tokens())
        return [len(ids) for ids in enc["input_ids"]]

    def render_pair(self, query: str, doc: str) -> str:
        """The pair as the model reads it: special tokens and separators included."""
        enc = self.tokenizer(query, doc, truncation=True, max_length=self.max_input_tokens())
        return self.tokenizer.decode(enc["input_ids"], skip_special_tokens=False)

    def render(self, prompt: Prompt) -> str:
        return prompt.plain_text()

    def max_input_tokens(self) -> int | None:
        # sentence-transformers >= 5 calls it max_seq_length; 4.x max_length
        n = getattr(self.model, "max_seq_length", None) if hasattr(type(self.model), "max_seq_length") \
            else getattr(self.model, "max_length", None)
        if not isinstance(n, int):
            n = getattr(self.tokenizer, "model_max_length", None)
        return int(n) if isinstance(n, int) and 0 < n < 10_000_000 else None

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
