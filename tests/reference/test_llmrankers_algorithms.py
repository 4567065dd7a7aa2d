"""rerankkit's PRP and setwise strategies against llm-rankers' own sorting code, with no model.

Both sides face the same judge: a deterministic function of the passages a prompt shows, in the order it
shows them, that names a label, names a label outside the group, or answers nothing usable. llm-rankers
runs its own ``rerank`` with its ``compare`` replaced by that judge (its model is the I/O edge, nothing
else is touched); rerankkit runs its real strategies over a scripted backend whose generated text is the
judge's answer. Same final ranking and, for every query, rerankkit's model calls = the distinct prompts
the reference sent (it re-asks repeated comparisons; rerankkit memoises).
"""

from __future__ import annotations

import hashlib
import re

import pytest

from rerankkit.backends.fake import ScriptedBackend
from rerankkit.prompts.template import load_template
from rerankkit.strategies import STRATEGIES
from rerankkit.types import Doc, Query

Q = Query("q", "what is it")
SHOWN = re.compile(r'Passage ([A-Z]): "doc(\d+)"')


def judge(seed: int, shown: tuple[int, ...], junk: float, outside: bool) -> str:
    """A label ("A", ...), a label beyond the group, or '"' (what SmolLM2 answers), from a hash of the group."""
    h = hashlib.sha256(f"{seed}:{shown}".encode()).digest()
    if h[0] < 256 * junk:
        return chr(ord("A") + len(shown)) if outside and h[1] % 2 else '"'
    # mostly prefers the higher document number (a consistent preference), sometimes not
    noisy = [d + (h[2 + j] % 16) for j, d in enumerate(shown)]
    return chr(ord("A") + max(range(len(shown)), key=lambda j: (noisy[j], -j)))


def ours(strategy: str, params: dict, n: int, seed: int, junk: float, outside: bool):
    def reply(prompt: str) -> str:
        shown = tuple(int(d) for _, d in SHOWN.findall(prompt))
        return " " + judge(seed, shown, junk, outside)

    template = "prp" if strategy == "pairwise" else "setwise"
    strat = STRATEGIES.get(strategy)(load_template(template), {**params, "mode": "generate", "ties": "incumbent"})
    docs = [Doc(str(i), f"doc{i}") for i in range(n)]
    r = strat.rerank_many(ScriptedBackend(generate=reply), [(Q, docs)])[0]
    return [int(d) for d in r.docids], r.metadata["model_calls"]


def reference(ranker, n: int, seed: int, junk: float, outside: bool, SearchResult, pairwise: bool):
    asked: set[tuple[int, ...]] = set()

    def compare(query, docs):
        if pairwise:  # docs are two texts; both orders are prompts
            a, b = (int(t[3:]) for t in docs)
            asked.update({(a, b), (b, a)})
            return [f"Passage {judge(seed, (a, b), junk, outside)}", f"Passage {judge(seed, (b, a), junk, outside)}"]
        shown = tuple(int(d.docid) for d in docs)
        if len(shown) >= 2:  # rerankkit never asks about fewer than two passages (see bubble_passes)
            asked.add(shown)
        return judge(seed, shown, junk, outside) if len(shown) >= 2 else "A"

    ranker.compare = compare
    out = ranker.rerank(Q.text, [SearchResult(docid=str(i), score=0.0, text=f"doc{i}") for i in range(n)])
    return [int(d.docid) for d in out], len(asked)


CASES = [(n, k, seed) for n in (2, 3, 5, 9, 10, 16, 20) for k in (1, 3, 10) for seed in range(3)]


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize("num_child", [2, 3])
def test_setwise_equals_llmrankers(llmrankers, method, num_child):
    _, sw, SearchResult = llmrankers
    outside = method == "heapsort"  # a label beyond the window: the reference's bubblesort swaps outside it
    for n, k, seed in CASES:
        for junk in (0.0, 0.3):
            ranker = object.__new__(sw.SetwiseLlmRanker)  # its rerank() without a model
            ranker.num_child, ranker.k, ranker.method, ranker.num_permutation = num_child, k, method, 1
            want, distinct = reference(ranker, n, seed, junk, outside, SearchResult, pairwise=False)
            got, calls = ours("setwise", {"method": method, "k": k, "num_child": num_child}, n, seed, junk, outside)
            assert (got, calls) == (want, distinct), (n, k, seed, junk)


@pytest.mark.parametrize("method,ours_method", [("heapsort", "heapsort"), ("bubblesort", "sliding")])
def test_prp_equals_llmrankers(llmrankers, method, ours_method):
    pw, _, SearchResult = llmrankers
    for n, k, seed in CASES:
        for junk in (0.0, 0.3):
            ranker = object.__new__(pw.PairwiseLlmRanker)
            ranker.method, ranker.k = method, k
            want, distinct = reference(ranker, n, seed, junk, True, SearchResult, pairwise=True)
            got, calls = ours("pairwise", {"method": ours_method, "k": k}, n, seed, junk, True)
            assert (got, calls) == (want, distinct), (n, k, seed, junk)
