"""Reading OpenAI-compatible replies: top log-probs, generated text and embeddings.

Every reader checks that the reply has what was asked for and raises :class:`BackendError` naming
what is missing, so a server that drops or renames a field never turns into a wrong score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BackendError


def _first_choice(reply: Any, what: str) -> dict[str, Any]:
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise BackendError(f"the server's {what} reply has no choices: {_short(reply)}")
    return choices[0]


def top_logprobs(reply: Any, chat: bool) -> dict[str, float]:
    """Token text -> log-prob for the first generated token (completions or chat reply)."""
    choice = _first_choice(reply, "chat" if chat else "completions")
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        raise BackendError(f"the reply has no log-probs (does the server support logprobs?): {_short(choice)}")
    out: dict[str, float] = {}
    if chat:
        content = lp.get("content")
        if not content or not isinstance(content[0], dict):
            raise BackendError(f"the reply's logprobs.content is empty: {_short(lp)}")
        first = content[0]
        for item in first.get("top_logprobs") or []:
            out.setdefault(str(item.get("token")), _num(item.get("logprob")))
        if "token" in first:  # the sampled token always has a log-prob, even outside the top list
            out.setdefault(str(first["token"]), _num(first.get("logprob")))
    else:
        tops = lp.get("top_logprobs")
        if not tops or not isinstance(tops[0], dict):
            raise BackendError(f"the reply's logprobs.top_logprobs is empty: {_short(lp)}")
        out.update({str(k): _num(v) for k, v in tops[0].items()})
        toks, vals = lp.get("tokens") or [], lp.get("token_logprobs") or []
        if toks and vals and vals[0] is not None:
            out.setdefault(str(toks[0]), _num(vals[0]))
    if not out:
        raise BackendError("the reply's top log-probs are empty")
    return out


def pick(top: dict[str, float], wanted: Sequence[tuple[int | None, str]], missing: str = "error") -> list[float]:
    """Log-prob of each wanted token, found by ``token_id:N`` key or by its text.

    ``missing="error"`` raises when a token is absent; ``"floor"`` gives it the smallest log-prob
    in the reply (an upper bound on its true value), but only when at least one token was found.
    """
    out: list[float | None] = []
    for tid, text in wanted:
        v = top.get(f"token_id:{tid}") if tid is not None else None
        out.append(v if v is not None else top.get(text))
    absent = [text for (_, text), v in zip(wanted, out) if v is None]
    if absent:
        if missing != "floor" or len(absent) == len(wanted):
            shown = ", ".join(repr(t) for t in list(top)[:10])
            raise BackendError(f"the reply has no log-prob for answer token(s) {absent!r} (it has: {shown}); "
                               "give the server's tokenizer (tokenizer=...) so logit_bias can restrict the answer, "
                               "raise top_logprobs, or pass missing_logprobs=floor to accept an upper bound")
        floor = min(top.values())
        out = [floor if v is None else v for v in out]
    return [float(v) for v in out]  # type: ignore[arg-type]


def generated_text(reply: Any, chat: bool) -> tuple[str, int | None, int | None]:
    """(text, prompt tokens, generated tokens) of a completions or chat reply."""
    choice = _first_choice(reply, "chat" if chat else "completions")
    if chat:
        msg = choice.get("message") or {}
        text = msg.get("content")
    else:
        text = choice.get("text")
    if text is None:
        raise BackendError(f"the reply has no generated text: {_short(choice)}")
    usage = reply.get("usage") or {}
    return str(text), usage.get("prompt_tokens"), usage.get("completion_tokens")


def embedding_rows(reply: Any, n: int, pooling: str = "mean") -> np.ndarray:
    """``n`` L2-normalised vectors from an embeddings reply; per-token vectors are pooled first."""
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, list) or len(data) != n:
        raise BackendError(f"the embeddings reply has {len(data) if isinstance(data, list) else 'no'} "
                           f"vectors for {n} inputs")
    rows = sorted(data, key=lambda d: d.get("index", 0))
    out = []
    for d in rows:
        v = np.asarray(d.get("embedding"), dtype=np.float64)
        if v.ndim == 2:  # llama.cpp without pooling: one vector per token
            if v.shape[0] == 0:
                raise BackendError("the embeddings reply has no token vectors")
            v = v[-1] if pooling == "last" else v.mean(axis=0)
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
            raise BackendError("the embeddings reply has a malformed vector")
        out.append(v / max(float(np.linalg.norm(v)), 1e-12))
    return np.stack(out).astype(np.float32)


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise BackendError(f"a log-prob in the reply is not a number: {v!r}") from None
    if math.isnan(x) or x > 1e-6:
        raise BackendError(f"a log-prob in the reply is not a log-probability: {v!r}")
    return min(x, 0.0)


def _short(x: Any) -> str:
    s = repr(x)
    return s if len(s) < 300 else s[:300] + "..."
