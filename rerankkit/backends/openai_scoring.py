"""SCORE for the openai backend: answer log-probs from one-token requests with ``logprobs``.

One request per prompt with ``logit_bias`` +100 on the answer tokens and a long top-k list; answer tokens
outside the list are asked for one at a time (a biased request makes the token the sampled one, whose
log-prob every server reports). Multi-token answers are scored token by token the same way. See
``docs/backends.md`` for what servers report under a bias and how mixed scales are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BackendError, CapabilityError
from .base import Prompt, ScoreRequest
from .http import Post, Program, ServerError, adrive, drive, gather_partial, run_bounded
from .openai_replies import pick, top_logprobs

log = logging.getLogger(__name__)
BIAS = 100.0
# top_logprobs=auto asks for a long list (cheap for a server; each answer token missing from it costs a
# follow-up request) and falls back to 20 when a server refuses that many (vLLM's default cap, OpenAI's)
AUTO_K, FALLBACK_K = 10_000, 20


class LogprobScoring:
    """Mixin for :class:`~rerankkit.backends.openai_compat.OpenAIBackend` (uses its client, tokenizers, body)."""

    client: Any
    local: Any
    endpoint: str
    top_k: int
    auto_k: bool
    use_bias: bool
    missing: str
    max_concurrency: int
    followups: int
    usage: Any
    _k_ok: int
    _lock: Any
    # and its methods render, _body, _choice_ids, _token_text

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if not requests:
            return []
        jobs = [self._score_job(r) for r in requests]
        flat = [(i, j) for i, job in enumerate(jobs) for j in range(len(job))]
        try:
            results = run_bounded(lambda ij: drive(jobs[ij[0]][ij[1]](), self.client), flat, self.max_concurrency)
        except ServerError as exc:
            raise _whole_requests(exc, flat, jobs) from exc
        return self._collect(requests, flat, results)

    async def ascore(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        """:meth:`score` with non-blocking requests (``httpx.AsyncClient``, ``max_concurrency`` in flight)."""
        if not requests:
            return []
        import asyncio

        jobs = await asyncio.to_thread(lambda: [self._score_job(r) for r in requests])  # tokenising, probes
        flat = [(i, j) for i, job in enumerate(jobs) for j in range(len(job))]
        client = self.async_client()
        try:
            results = await gather_partial([adrive(jobs[i][j](), client) for i, j in flat])
        except ServerError as exc:
            raise _whole_requests(exc, flat, jobs) from exc
        return self._collect(requests, flat, results)

    def _collect(self, requests: Sequence[ScoreRequest], flat: list[tuple[int, int]],
                 results: list[tuple[list[float], int]]) -> list[np.ndarray]:
        out: list[list[float]] = [[] for _ in requests]
        tokens = 0
        for (i, _), (vals, n) in zip(flat, results):
            out[i].extend(vals)
            tokens += n
        self.usage.add(len(requests), tokens)
        return [np.asarray(v, dtype=np.float64) for v in out]

    def _score_job(self, req: ScoreRequest) -> list[Any]:
        """Program factories that each give (log-probs, prompt tokens); together they cover the choices."""
        chat = self.endpoint == "chat"
        context = "" if chat and not req.prompt.prefix else (req.prompt.prefix if chat else self.render(req.prompt))
        ids = [self._choice_ids(context, c) for c in req.choices]
        if all(i is None or len(i) == 1 for i in ids):
            wanted = [(None if i is None else i[0], self._token_text(None if i is None else i[0], c))
                      for i, c in zip(ids, req.choices)]
            restrict = self.use_bias and all(w[0] is not None for w in wanted)
            fields: dict[str, Any] = {"max_tokens": 1}
            fields.update({"logprobs": True, "top_logprobs": self.top_k} if chat else {"logprobs": self.top_k})
            if restrict:
                fields["logit_bias"] = {str(t): BIAS for t in sorted({w[0] for w in wanted})}
            path, body, n = self._body(req.prompt, **fields)

            def one() -> Program[tuple[list[float], int]]:
                reply, k = yield from self._post_logprobs(path, body, chat)
                top = top_logprobs(reply, chat)
                if restrict:
                    yield from self._fill_missing(path, body, top, wanted, chat, k)
                used = (reply.get("usage") or {}).get("prompt_tokens") or n
                return pick(top, wanted, self.missing), int(used)

            return [one]
        if chat or self.local is None:
            raise CapabilityError(f"multi-token answers {req.choices!r} need the completions endpoint and a "
                                  "local tokenizer (tokenizer=...) to be scored token by token")
        return [self._chain_job(req.prompt, i) for i in ids]  # type: ignore[arg-type]

    def _post_logprobs(self, path: str, body: dict[str, Any], chat: bool) -> Program[tuple[Any, int]]:
        """Post a log-prob request; with ``top_logprobs=auto`` the current k, lowered once if refused."""
        key = "top_logprobs" if chat else "logprobs"
        k = self.top_k if self.auto_k else int(body[key])
        try:
            reply = yield Post(path, dict(body, **{key: k}))
        except ServerError as exc:
            if not (self.auto_k and k > FALLBACK_K and exc.status in (400, 422) and "logprob" in str(exc).lower()):
                raise
            with self._lock:
                self.top_k = max(FALLBACK_K, self._k_ok)
            log.info("the server refuses %d top log-probs; asking for %d", k, self.top_k)
            return (yield from self._post_logprobs(path, body, chat))
        with self._lock:
            self._k_ok = max(self._k_ok, k)
        return reply, k

    def _fill_missing(self, path: str, body: dict[str, Any], top: dict[str, float],
                      wanted: list[tuple[int | None, str]], chat: bool, k: int) -> Program[int]:
        """Ask again, biased towards one answer token at a time, for each token absent from ``top``.

        Servers that report log-probs *before* the bias (llama.cpp, vLLM) list the raw top-k plus the
        sampled token, so a biased request reveals that token's exact log-prob. A value above the
        k-th listed one means the server reports log-probs *after* the bias, which would mix scales.
        """
        listed = sorted(top.values(), reverse=True)
        kth = listed[k - 1] if len(listed) >= k else None
        asked = 0
        for tid, text in wanted:
            if f"token_id:{tid}" in top or text in top:
                continue
            again = dict(body, logit_bias={str(tid): BIAS})
            again.update({"top_logprobs": 1} if chat else {"logprobs": 1})
            got = top_logprobs((yield Post(path, again)), chat)
            value = got.get(f"token_id:{tid}", got.get(text))
            if value is None:
                raise BackendError(f"the server ignored logit_bias: answer token {text!r} ({tid}) is not in its reply")
            if kth is not None and value > kth + 1e-4:
                raise BackendError("the server reports log-probs after logit_bias; set top_logprobs to at least "
                                   f"the number of answer tokens ({len(wanted)})")
            top[text] = value
            asked += 1
            with self._lock:
                self.followups += 1
        return asked

    def _chain_job(self, prompt: Prompt, cont: list[int]) -> Any:
        """log p(answer) as the sum over its tokens: each asked for with a one-token request biased to it,
        after the prompt and the answer's earlier tokens (exact on servers that report raw log-probs).

        (Echoed prompt log-probs are not used: llama-cpp-python misaligns them unless the prompt starts
        with its BOS token, and computes them slowly.)
        """
        local = self.local
        if local is None:
            raise CapabilityError("answers longer than one token need a local tokenizer (tokenizer=...)")
        path, body, n = self._body(prompt, max_tokens=1, logprobs=self.top_k)
        base = body["prompt"]

        def one() -> Program[tuple[list[float], int]]:
            total, first = 0.0, None
            for j, tid in enumerate(cont):
                text = local.token_text(tid)
                if isinstance(base, str):
                    p: Any = base + local.tok.decode(cont[:j]) if j else base
                else:
                    p = [*base, *cont[:j]]
                reply, _ = yield from self._post_logprobs(path, dict(body, prompt=p, logit_bias={str(tid): BIAS}), False)
                used = (reply.get("usage") or {}).get("prompt_tokens")
                first = used if j == 0 else first
                if used is not None and first is not None and int(used) != int(first) + j:
                    raise BackendError(f"the server tokenised prompt + answer prefix into {used} tokens, "
                                       f"expected {int(first) + j}: it splits the answer differently")
                top = top_logprobs(reply, False)
                value = top.get(f"token_id:{tid}", top.get(text))
                if value is None:
                    raise BackendError(f"the server ignored logit_bias: answer token {text!r} ({tid}) is not in its reply")
                others = [v for t, v in top.items() if t != text]
                if others and max(others) < -50.0:
                    raise BackendError("the server reports log-probs after logit_bias, so answers longer than one "
                                       "token cannot be scored token by token")
                total += value
            return [total], n

        return one


def _whole_requests(exc: ServerError, flat: list[tuple[int, int]], jobs: list[list[Any]]) -> ServerError:
    """The failure with ``partial`` reduced to the requests whose every program finished (for a cache)."""
    per: dict[int, dict[int, list[float]]] = {}
    for pos, (vals, _) in exc.partial.items():
        per.setdefault(flat[pos][0], {})[flat[pos][1]] = vals
    done = {i: np.asarray([v for j in sorted(d) for v in d[j]], dtype=np.float64)
            for i, d in per.items() if len(d) == len(jobs[i])}
    return ServerError(str(exc), exc.status, done)
