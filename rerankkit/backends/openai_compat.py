"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs) as a backend.

Two endpoints:

- ``completions`` (default when a local tokenizer is available: ``model`` is ``packaged:NAME``, a
  folder or a GGUF file, or ``tokenizer=`` names one): prompts are rendered *here* with the
  tokenizer's chat template, exactly as the hf backend renders them, and sent as token ids. An
  assistant prefix is just more prompt, and a multi-token answer is scored token by token (one
  biased one-token request per answer token, the answer's earlier tokens appended to the prompt).
- ``chat``: the server applies its own chat template. A pre-filled assistant prefix needs
  ``continue_final_message=true`` (vLLM); multi-token answers cannot be scored.

SCORE asks for one generated token with ``logprobs`` and a ``logit_bias`` of +100 on the answer
tokens, so every answer token is among the returned top log-probs. Servers differ in what they
report under a bias: vLLM reports log-probs before it, llama.cpp and OpenAI after it (normalised
over the answer tokens). Either way the *differences* between answers, which are all a strategy
uses, are the model's. A reply without the expected log-probs raises :class:`BackendError`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import BackendError, CapabilityError, ConfigError
from ..options import option
from .base import BackendBase, Capability, Generation, Prompt, SamplingArg, sampling_list, without_breaks
from .http import (
    AsyncHttpClient,
    HttpClient,
    Post,
    Program,
    ServerError,
    adrive,
    drive,
    gather_partial,
    run_bounded,
)
from .openai_replies import embedding_rows, generated_text
from .openai_scoring import AUTO_K, LogprobScoring
from .tokenizing import LocalTokenizer, ServerTokenizer, is_local_ref, load_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenAIOptions:
    """The openai backend's options."""

    base_url: str | None = option(None, help="the server, http://HOST:PORT/v1 (/v1 is added to a bare host; "
                                             "default $OPENAI_BASE_URL)")
    served_model: str | None = option(None, help="the name the server knows (default: model unless that is local, "
                                                 "else the server's first model)")
    endpoint: str = option("auto", choices=("auto", "completions", "chat"),
                           help="completions: prompts rendered here with a local tokenizer; chat: the server's "
                                "chat template; auto: completions when a local tokenizer is available")
    tokenizer: str | None = option(None, help="a local tokenizer (hub id, folder, GGUF or packaged:NAME), or "
                                              "'server' for the server's tokenize endpoint")
    chat_template: bool = option(True, help="apply the local tokenizer's chat template")
    api_key_env: str = option("OPENAI_API_KEY", help="the environment variable holding the API key")
    max_concurrency: int = option(8, bounds=(1, None), help="requests in flight")
    timeout: float = option(60.0, bounds=(0, None), help="seconds per request")
    max_retries: int = option(4, bounds=(0, None), help="retries of a failed request (429, 5xx, timeouts)")
    backoff: float = option(0.5, bounds=(0, None), help="first retry delay in seconds, doubled each time")
    top_logprobs: int | str = option("auto", help="top log-probs asked for when scoring: a number, or auto")
    logit_bias: bool = option(True, help="bias the answer tokens (+100) so they are among the top log-probs")
    missing_logprobs: str = option("error", choices=("error", "floor"),
                                   help="an answer token without a log-prob: error, or the lowest one seen")
    continue_final_message: bool = option(False, help="chat endpoint: continue a pre-filled assistant turn (vLLM)")
    pooling: str = option("mean", choices=("mean", "last"), help="for servers that return per-token embeddings")
    embed_batch_size: int = option(32, bounds=(1, None), help="texts per embeddings request")
    extra_body: dict[str, Any] | None = option(None, help="JSON merged into every request body")
    token_ids: str = option("auto", choices=("auto", "true", "false"),
                            help="send prompts as token ids (auto: probe the server once)")
    threads: int | None = option(None, help="ignored here (a server-side setting; accepted so shared overrides work)")

    def validate(self) -> None:
        if self.top_logprobs != "auto" and (not isinstance(self.top_logprobs, int) or self.top_logprobs < 1):
            raise ConfigError(f"openai top_logprobs must be a positive number or auto, not {self.top_logprobs!r}")


class OpenAIBackend(LogprobScoring, BackendBase):
    """A model behind an OpenAI-compatible HTTP API. Options: :class:`OpenAIOptions`."""

    backend_name = "openai"
    Options = OpenAIOptions
    capabilities = Capability.GENERATE | Capability.SCORE | Capability.EMBED

    def __init__(self, model: str = "", **options: Any) -> None:
        super().__init__(model, **options)
        o: OpenAIOptions = self.opts
        url = o.base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise ConfigError("the openai backend needs base_url=http://HOST:PORT/v1 (or $OPENAI_BASE_URL)")
        self.base_url = _with_v1(str(url))
        self.max_concurrency = o.max_concurrency
        self.auto_k = o.top_logprobs == "auto"
        self.top_k = AUTO_K if self.auto_k else int(o.top_logprobs)
        self._k_ok = 0  # the largest top-k a server accepted
        self.use_bias = o.logit_bias
        self.missing = o.missing_logprobs
        self.continue_final = o.continue_final_message
        self.pooling = o.pooling
        self.embed_batch_size = o.embed_batch_size
        self.extra = dict(o.extra_body or {})
        endpoint, tokenizer = o.endpoint, o.tokenizer
        key = os.environ.get(o.api_key_env) if o.api_key_env else None
        self._api_key = key
        self.client = HttpClient(self.base_url, key, o.timeout, o.max_retries, o.backoff)
        self._aclient: AsyncHttpClient | None = None
        tok_ref = tokenizer if tokenizer is not None else (model if is_local_ref(model) else None)
        self.local: LocalTokenizer | None = None
        if tok_ref and tok_ref != "server":
            self.local = LocalTokenizer(load_tokenizer(tok_ref), o.chat_template)
        self.endpoint = endpoint if endpoint != "auto" else ("completions" if self.local else "chat")
        self.served_model = o.served_model or (model if model and not is_local_ref(model) else self._first_model())
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self.remote = ServerTokenizer(self.client, root, self.served_model)
        self.token_ids = o.token_ids
        self._ids_ok: bool | None = None
        self.followups = 0  # extra requests for answer tokens outside the top log-probs
        self._batch_checked = False
        self._lock = threading.Lock()
        log.info("openai backend: %s at %s (%s endpoint, %s tokenizer)", self.served_model, self.base_url,
                 self.endpoint, "local" if self.local else "server")

    # -- settings and text ---------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "served_model": self.served_model, "endpoint": self.endpoint,
                "logit_bias": self.use_bias, "missing_logprobs": self.missing, "pooling": self.pooling}

    def _first_model(self) -> str:
        try:
            data = self.client.get("models").get("data") or []
        except BackendError as exc:
            raise BackendError(f"cannot list the server's models at {self.base_url}: {exc}; "
                               "give served_model=NAME") from None
        if not data:
            raise BackendError(f"the server at {self.base_url} lists no models; give served_model=NAME")
        return str(data[0]["id"])

    def render(self, prompt: Prompt) -> str:
        return self.local.render(prompt) if self.local else prompt.plain_text()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self.local:
            return self.local.count(texts)
        if self.remote.available:
            return [n for chunk in run_bounded(self.remote.count, [[t] for t in texts], self.max_concurrency)
                    for n in chunk]
        return super().count_tokens(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        if self.local:
            return self.local.truncate(text, max_tokens)
        if self.remote.available:
            return self.remote.truncate(text, max_tokens)
        return super().truncate(text, max_tokens)

    def _choice_ids(self, context: str, choice: str) -> list[int] | None:
        if self.local:
            return self.local.continuation_ids(context, choice)
        if self.remote.available:
            return self.remote.continuation_ids(context, choice)
        return None

    def _token_text(self, token_id: int | None, choice: str) -> str:
        return self.local.token_text(token_id) if self.local and token_id is not None else choice

    def _ids_accepted(self) -> bool:
        """Whether the server takes prompts as token ids (vLLM, OpenAI do; llama-cpp-python does not)."""
        if self._ids_ok is None:
            if self.token_ids in ("true", "false"):
                self._ids_ok = self.token_ids == "true"
            else:
                probe = {"model": self.served_model, "prompt": self.local.encode("Hello") if self.local else [0],
                         "max_tokens": 1, "temperature": 0.0}
                try:
                    self._ids_ok = bool(self.client.post("completions", probe, retry=False).get("choices"))
                except ServerError as exc:
                    if exc.status is None:
                        raise
                    self._ids_ok = False
                log.info("server takes token-id prompts: %s", self._ids_ok)
        return bool(self._ids_ok)

    # -- request bodies ------------------------------------------------------------------------
    def _body(self, prompt: Prompt, **fields: Any) -> tuple[str, dict[str, Any], int]:
        """(path, body, prompt tokens known here or 0) for ``prompt`` on the configured endpoint."""
        body: dict[str, Any] = {"model": self.served_model, "temperature": 0.0, **self.extra, **fields}
        if self.endpoint == "completions":
            rendered = self.render(prompt)
            ids = self.local.encode(rendered) if self.local else None
            body["prompt"] = ids if ids is not None and self._ids_accepted() else without_breaks(rendered)
            return "completions", body, len(ids or [])
        msgs = [{"role": m.role, "content": without_breaks(m.content)} for m in prompt.messages]
        if prompt.prefix:
            if not self.continue_final:
                raise CapabilityError(
                    "this prompt pre-fills the assistant turn, which the chat endpoint cannot do; use "
                    "endpoint=completions with a local tokenizer (tokenizer=...), or continue_final_message=true "
                    "if the server supports it (vLLM)")
            msgs.append({"role": "assistant", "content": without_breaks(prompt.prefix)})
            body.update(continue_final_message=True, add_generation_prompt=False)
        body["messages"] = msgs
        return "chat/completions", body, 0

    # -- GENERATE / EMBED ----------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        """Greedy (temperature 0), or sampled: ``sampling``'s temperature, top_p and seed go in each request."""
        if not prompts:
            return []
        bodies = self._generation_bodies(prompts, max_new_tokens, sampling)
        out = run_bounded(lambda pb: drive(self._generation(pb), self.client), bodies, self.max_concurrency)
        return self._generated(out)

    async def agenerate(self, prompts: Sequence[Prompt], max_new_tokens: int,
                        sampling: SamplingArg = None) -> list[Generation]:
        """:meth:`generate` with non-blocking requests."""
        if not prompts:
            return []
        bodies = await asyncio.to_thread(self._generation_bodies, prompts, max_new_tokens, sampling)
        client = self.async_client()
        return self._generated(await gather_partial([adrive(self._generation(pb), client) for pb in bodies]))

    def _generation_bodies(self, prompts: Sequence[Prompt], max_new_tokens: int,
                           sampling: SamplingArg) -> list[tuple[str, dict[str, Any], int]]:
        return [self._body(p, max_tokens=int(max_new_tokens), **{k: v for k, v in s.key().items() if v is not None})
                for p, s in zip(prompts, sampling_list(sampling, len(prompts)))]

    def _generation(self, pb: tuple[str, dict[str, Any], int]) -> Program[Generation]:
        text, p_tok, g_tok = generated_text((yield Post(pb[0], pb[1])), self.endpoint == "chat")
        return Generation(text, int(p_tok or pb[2]), int(g_tok if g_tok is not None else len(text.split())))

    def _generated(self, out: list[Generation]) -> list[Generation]:
        self.usage.add(len(out), sum(g.prompt_tokens for g in out), sum(g.generated_tokens for g in out))
        return out

    def _embedding(self, chunk: list[str]) -> Program[np.ndarray]:
        # an empty input makes some servers fail; a single space embeds "nothing" the same way everywhere
        body = {"model": self.served_model, "input": [t or " " for t in chunk]}
        return embedding_rows((yield Post("embeddings", body)), len(chunk), self.pooling)

    def _checked_batching(self, pair: np.ndarray) -> None:
        # llama-cpp-python 0.3.36 returns wrong vectors for every input but the first of a batch:
        # one text is embedded twice in one request, and one text per request is sent if the two differ
        self._batch_checked = True
        if not np.allclose(pair[0], pair[1], atol=1e-4):
            log.warning("the server embeds batched inputs inconsistently; sending one text per request")
            self.embed_batch_size = 1

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        return [texts[i: i + self.embed_batch_size] for i in range(0, len(texts), self.embed_batch_size)]

    def _embedded(self, texts: list[str], rows: list[np.ndarray]) -> np.ndarray:
        self.usage.add(len(texts), 0)
        return np.concatenate(rows)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.embed_batch_size > 1 and not self._batch_checked:
            self._checked_batching(drive(self._embedding([texts[0], texts[0]]), self.client))
        try:
            rows = run_bounded(lambda c: drive(self._embedding(c), self.client), self._chunks(texts),
                               self.max_concurrency)
        except ServerError as exc:
            raise self._rows_done(exc) from exc
        return self._embedded(texts, rows)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed` with non-blocking requests."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        client = self.async_client()
        if self.embed_batch_size > 1 and not self._batch_checked:
            self._checked_batching(await adrive(self._embedding([texts[0], texts[0]]), client))
        try:
            rows = await gather_partial([adrive(self._embedding(c), client) for c in self._chunks(texts)])
        except ServerError as exc:
            raise self._rows_done(exc) from exc
        return self._embedded(texts, rows)

    def _rows_done(self, exc: ServerError) -> ServerError:
        done = {c * self.embed_batch_size + r: row for c, rows in exc.partial.items() for r, row in enumerate(rows)}
        return ServerError(str(exc), exc.status, done)

    def async_client(self) -> AsyncHttpClient:
        """The client for the async methods (made on first use)."""
        with self._lock:
            if self._aclient is None:
                c = self.client
                self._aclient = AsyncHttpClient(self.base_url, self._api_key, c.timeout, c.max_retries, c.backoff,
                                                c.max_backoff, self.max_concurrency)
            return self._aclient

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.local.spans(text) if self.local else super().token_spans(text)

    def close(self) -> None:
        self.client.close()
        if self._aclient is not None:
            self._aclient.close()


def _with_v1(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ConfigError(f"base_url must look like http://HOST:PORT/v1, not {url!r}")
    return url.rstrip("/") + ("/v1" if parts.path in ("", "/") else "")
