"""Test backends that need no model: scripted replies, and an oracle that knows the relevance.

Both are public so users can test their own pipelines. The oracle reads the rendered prompt, finds
the documents it knows (by text) and the label printed before each (``[3]``, ``Passage A``, ``B``),
and answers any strategy's question from the known relevance.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..options import option
from .base import BackendBase, Capability, Generation, Prompt, SamplingArg, ScoreRequest

ScoreFn = Callable[[str, tuple[str, ...]], Sequence[float]]
GenerateFn = Callable[[str], str]

_LABEL_WORDS = {"yes": 1.0, "true": 1.0, "relevant": 1.0, "no": 0.0, "false": 0.0, "not": 0.0,
                "irrelevant": 0.0, "highly": 2.0, "somewhat": 1.0, "perfectly": 3.0}
_LABEL_BEFORE = re.compile(r"(\[[^\]\s]{1,4}\]|(?:Passage|Document|Doc)\s+\w{1,3}|\b[A-Z]\b|\(\w{1,3}\))\W{0,4}$")


@dataclass(frozen=True)
class ScriptedOptions:
    score: ScoreFn | None = option(None, help="(rendered prompt, choices) -> log-probs, one per choice")
    generate: GenerateFn | Sequence[str] | None = option(None, help="rendered prompt -> reply, or the replies in order")
    embed: Callable[[str], Sequence[float]] | None = option(None, help="text -> vector (normalised here)")
    relevance: Callable[[str, str], float] | None = option(None, help="(query, document) -> relevance logit")


class ScriptedBackend(BackendBase):
    """Answers from functions or fixed lists you provide; records every rendered prompt it saw.

    It offers only the capabilities it was given functions for."""

    backend_name = "scripted"
    Options = ScriptedOptions
    capabilities = Capability.SCORE | Capability.GENERATE | Capability.EMBED | Capability.RELEVANCE

    def __init__(
        self,
        *,
        score: ScoreFn | None = None,
        generate: GenerateFn | Sequence[str] | None = None,
        embed: Callable[[str], Sequence[float]] | None = None,
        relevance: Callable[[str, str], float] | None = None,
        model: str = "scripted",
    ) -> None:
        super().__init__(model, score=score, generate=generate, embed=embed, relevance=relevance)
        self._score = score
        self._generate = generate
        self._embed = embed
        self._relevance = relevance
        self._replies = iter(generate) if isinstance(generate, (list, tuple)) else None
        self.narrow(
            (Capability.SCORE if score else Capability.NONE)
            | (Capability.GENERATE if generate is not None else Capability.NONE)
            | (Capability.EMBED if embed else Capability.NONE)
            | (Capability.RELEVANCE if relevance else Capability.NONE)
        )
        self.seen: list[str] = []

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if self._score is None:
            return self._lacks(Capability.SCORE)
        out = []
        for r in requests:
            text = self.render(r.prompt)
            self.seen.append(text)
            out.append(np.asarray(self._score(text, r.choices), dtype=np.float64))
        self.usage.add(len(requests), sum(self.count_tokens([self.render(r.prompt) for r in requests])))
        return out

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        if self._generate is None:
            return self._lacks(Capability.GENERATE)
        out = []
        for p in prompts:
            text = self.render(p)
            self.seen.append(text)
            reply = next(self._replies) if self._replies is not None else self._generate(text)  # type: ignore[operator]
            out.append(Generation(reply, len(text.split()), len(reply.split())))
        self.usage.add(len(prompts), sum(g.prompt_tokens for g in out), sum(g.generated_tokens for g in out))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embed is None:
            return self._lacks(Capability.EMBED)
        v = np.asarray([self._embed(t) for t in texts], dtype=np.float32)
        self.usage.add(len(texts), sum(self.count_tokens(texts)))
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if self._relevance is None:
            return self._lacks(Capability.RELEVANCE)
        self.seen.extend(f"{q}\n{d}" for q, d in pairs)
        self.usage.add(len(pairs), sum(self.count_tokens([f"{q} {d}" for q, d in pairs])))
        return np.asarray([self._relevance(q, d) for q, d in pairs], dtype=np.float64)


@dataclass(frozen=True)
class OracleOptions:
    relevance: Mapping[str, float] = option(default_factory=dict, help="document text -> relevance grade")
    noise: float = option(0.0, bounds=(0.0, None), help="standard deviation of seeded noise added to the grades")
    seed: int = option(0, help="seed of the noise")


class OracleBackend(BackendBase):
    """Answers from known relevance (``{document text: grade}``), optionally with seeded noise.

    Noise is a pure function of (seed, rendered prompt, document), so the same question always gets
    the same answer whatever the call order.
    """

    backend_name = "oracle"
    Options = OracleOptions
    capabilities = Capability.SCORE | Capability.GENERATE | Capability.EMBED | Capability.RELEVANCE

    def __init__(self, relevance: Mapping[str, float] | None = None, noise: float = 0.0, seed: int = 0,
                 model: str = "oracle"):
        super().__init__(model, relevance=relevance or {}, noise=noise, seed=seed)
        self.grades = dict(self.opts.relevance)  # document text -> grade (``relevance`` is the protocol method)
        self.noise = self.opts.noise
        self.seed = self.opts.seed
        # longest texts first so a text that contains another is matched as itself
        self._texts = sorted(self.grades, key=len, reverse=True)
        self._max_rel = max([abs(float(v)) for v in self.grades.values()] + [1e-9])

    def options(self) -> dict[str, Any]:
        return {"noise": self.noise, "seed": self.seed}

    # -- reading the prompt ---------------------------------------------------------------------
    def docs_in(self, text: str) -> list[tuple[str, str, float]]:
        """(label, doc text, relevance) for each known document in ``text``, in prompt order."""
        found: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []
        for t in self._texts:
            if not t:
                continue
            start = 0
            while (i := text.find(t, start)) >= 0:
                j = i + len(t)
                if not any(a < j and i < b for a, b in taken):
                    found.append((i, t))
                    taken.append((i, j))
                start = j
        found.sort()
        out = []
        for pos, t in found:
            m = _LABEL_BEFORE.search(text[max(0, pos - 40) : pos])
            label = m.group(1) if m else ""
            out.append((label, t, self._rel(text, t)))
        return out

    def _rel(self, prompt: str, doc: str) -> float:
        r = float(self.grades[doc])
        if self.noise:
            h = hashlib.sha256(f"{self.seed}\0{prompt}\0{doc}".encode()).digest()
            r += self.noise * float(np.random.default_rng(int.from_bytes(h[:8], "little")).standard_normal())
        return r

    # -- answering ------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        out = []
        for req in requests:
            text = self.render(req.prompt)
            docs = self.docs_in(text)
            out.append(self._score_one(docs, req.choices))
        self.usage.add(len(requests), sum(self.count_tokens([self.render(r.prompt) for r in requests])))
        return out

    def _score_one(self, docs: list[tuple[str, str, float]], choices: tuple[str, ...]) -> np.ndarray:
        if len(docs) == 1:  # pointwise: the answer whose label value is closest to the relevance wins
            values = [_label_value(c) for c in choices]
            top = max((v for v in values if v is not None), default=1.0) or 1.0
            r = docs[0][2] / self._max_rel
            logits = [-8.0 * ((v / top) - r) ** 2 if v is not None else -30.0 for v in values]
            return _log_softmax(np.asarray(logits, dtype=np.float64))
        # label choices: map each choice to the document printed with that label
        by_label = {_norm_label(lbl): rel for lbl, _, rel in docs}
        logits = [by_label.get(_norm_label(c), -1e9) for c in choices]
        return _log_softmax(np.asarray(logits, dtype=np.float64) * 4.0)

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        out = []
        for p in prompts:
            text = self.render(p)
            reply = self._reply(text, self.docs_in(text))
            out.append(Generation(reply, len(text.split()), len(reply.split())))
        self.usage.add(len(prompts), sum(g.prompt_tokens for g in out), sum(g.generated_tokens for g in out))
        return out

    def _reply(self, text: str, docs: list[tuple[str, str, float]]) -> str:
        if len(docs) == 1:
            return "Yes" if docs[0][2] > 0 else "No"
        ranked = sorted(docs, key=lambda d: -d[2])
        if "JSON" in text or "json" in text:  # integer grades 0-10 on one scale for every prompt
            return json.dumps({lbl: round(10 * max(rel, 0) / self._max_rel) for lbl, _, rel in docs})
        if " > " in text or "[] >" in text:
            return " > ".join(lbl for lbl, _, _ in ranked)
        return ranked[0][0] if ranked else ""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A 2-d embedding whose angle grows as relevance falls (relevance must be in [0, 3]).

        A text holding exactly one known document (perhaps with text around it) is that document;
        any other text (a query, a prompt listing several documents) points at full relevance.
        """
        vecs = []
        for t in texts:
            docs = self.docs_in(t)
            rel = self.grades[docs[0][1]] if len(docs) == 1 else 3.0
            a = (3.0 - max(0.0, min(3.0, float(rel)))) / 3.0 * (math.pi / 2)
            vecs.append([math.cos(a), math.sin(a)])
        self.usage.add(len(texts), sum(self.count_tokens(texts)))
        return np.asarray(vecs, dtype=np.float32)

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The known relevance of the document in each pair, as a logit (0 for an unknown text)."""
        out = []
        for q, d in pairs:
            docs = self.docs_in(d)
            out.append(self._rel(q, docs[0][1]) if len(docs) == 1 else 0.0)
        self.usage.add(len(pairs), sum(self.count_tokens([f"{q} {d}" for q, d in pairs])))
        return np.asarray(out, dtype=np.float64)


def _label_value(choice: str) -> float | None:
    """The relevance value an answer word stands for (digits, yes/no, graded words), else None."""
    w = choice.strip().strip('"').lower()
    if w.isdigit():
        return float(w)
    return _LABEL_WORDS.get(w)


def _norm_label(label: str) -> str:
    s = label.strip().strip('"').strip("[]()").strip()
    for word in ("Passage", "Document", "Doc"):
        if s.startswith(word):
            s = s[len(word) :].strip()
    return s


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x)
    return x - (m + np.log(np.sum(np.exp(x - m))))


@dataclass(frozen=True)
class RandomOptions:
    seed: int = option(0, help="seed of the answers")
    delay: float = option(0.0, bounds=(0.0, None), help="seconds of sleep per request (imitates a model's cost)")
    dim: int = option(8, bounds=(1, None), help="embedding size")


class RandomBackend(BackendBase):
    """Answers that are a pure function of (seed, rendered prompt, choice): no model, fully reproducible.

    For dry runs of pipelines and benchmarks: ``delay`` seconds per request imitate a model's cost.
    Scores are log-softmax normalised pseudo-random logits; replies are short label-like strings.
    """

    backend_name = "random"
    Options = RandomOptions
    capabilities = Capability.SCORE | Capability.GENERATE | Capability.EMBED

    def __init__(self, model: str = "random", **options: Any):
        super().__init__(model, **options)
        self.seed = self.opts.seed
        self.delay = self.opts.delay
        self.dim = self.opts.dim

    def options(self) -> dict[str, Any]:
        return {"seed": self.seed, "dim": self.dim}

    def _rng(self, *parts: str) -> np.random.Generator:
        h = hashlib.sha256("\0".join((str(self.seed), *parts)).encode()).digest()
        return np.random.default_rng(int.from_bytes(h[:8], "little"))

    def _wait(self, n: int) -> None:
        if self.delay > 0:
            import time

            time.sleep(self.delay * n)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        texts = [self.render(r.prompt) for r in requests]
        self._wait(len(requests))
        out = [_log_softmax(np.asarray([self._rng(t, c).standard_normal() for c in r.choices], dtype=np.float64))
               for t, r in zip(texts, requests)]
        self.usage.add(len(requests), sum(self.count_tokens(texts)))
        return out

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        self._wait(len(prompts))
        out = []
        for p in prompts:
            text = self.render(p)
            reply = " > ".join(f"[{i}]" for i in self._rng(text).permutation(4) + 1)
            out.append(Generation(reply, len(text.split()), len(reply.split())))
        self.usage.add(len(prompts), sum(g.prompt_tokens for g in out), sum(g.generated_tokens for g in out))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._wait(len(texts))
        v = np.asarray([self._rng(t).standard_normal(self.dim) for t in texts], dtype=np.float32).reshape(-1, self.dim)
        self.usage.add(len(texts), sum(self.count_tokens(texts)))
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
