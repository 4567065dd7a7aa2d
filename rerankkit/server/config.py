"""Server settings: limits, micro-batching and the score scale (plain data, no web framework)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError

#: how ``relevance_score`` is derived from a reranker score
SCORE_SCALES = ("sigmoid", "raw")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of the rerank server (every limit is answered with a 4xx that names it).

    ``max_batch_requests=1`` turns micro-batching off (each request gets its own model calls).
    ``score="sigmoid"`` maps scores into (0, 1) as the Cohere API promises (for pointwise yes/no
    log-odds this is p(yes) / (p(yes) + p(no))); ``"raw"`` returns the reranker's own scores.
    The order of ``results`` is always the reranker's order.
    ``request_timeout_s``: seconds from a request's arrival to its answer (reading the body, waiting in
    the queue, the model call); a request past it is answered 503 (408 while its body is still
    arriving) and leaves the queue. ``None``: no limit. At most ``max_queue_requests +
    max_batch_requests`` rerank requests are admitted at once (reading, queued or running); more get
    503 with ``Retry-After``, so memory stays bounded by that many bodies of ``max_body_bytes``.
    """

    model_name: str = "rerankkit"
    api_key: str | None = None
    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_query_chars: int = 4_000
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_requests: int = 32
    max_batch_documents: int = 1024
    max_queue_requests: int = 256
    max_queue_documents: int = 32_768
    score: str = "sigmoid"
    graceful_timeout_s: float = 60.0
    request_timeout_s: float | None = 300.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("max_") and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"server setting {f.name} must be a positive integer, not {v!r}")
        if self.score not in SCORE_SCALES:
            raise ConfigError(f"server setting score must be one of {SCORE_SCALES}, not {self.score!r}")
        t = self.request_timeout_s
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            raise ConfigError(f"server setting request_timeout_s must be a positive number or None, not {t!r}")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("server api_key must not be empty (use None for no key)")
