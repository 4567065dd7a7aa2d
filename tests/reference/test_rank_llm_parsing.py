"""The same window order as rank_llm's ``receive_permutation`` for the same model text, malformed or not.

rank_llm side: ``ListwiseRankLLM.receive_permutation`` (its handler's ``_clean_response``,
``_remove_duplicate``, range filter, missing documents appended, exception fallback). rerankkit
side: ``parse_permutation``, and the listwise strategy end to end over several windows.
"""

from __future__ import annotations

import pytest
import rank_llm_ref as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_llm_fixtures import *  # noqa: F403  (the rank_llm_* fixtures)

from rerankkit import Doc, Query, Reranker
from rerankkit.backends.base import Generation
from rerankkit.strategies.permutation import identifiers, parse_permutation


@pytest.fixture(scope="module")
def rank_llm_parsers(rank_llm_env):
    """rank_llm rerankers used only for their parsing (numeric and alphabetic identifiers)."""
    return {"numeric": ref.reranker(ref.ScriptedEngine(None), "rank-zephyr"),
            "alpha": ref.reranker(ref.ScriptedEngine(None), "first-rankllm")}


def check(parsers, text, n, style):
    mine = parse_permutation(text, identifiers(n, style))
    assert list(mine.order) == ref.order_after(parsers[style], text, n), (text, n, style)
    assert sorted(mine.order) == list(range(n))  # never loses or duplicates a document
    return mine


HAND_PICKED = [
    "[3] > [1] > [2]",  # well formed
    "[2] > [2] > [1] > [2]",  # repeated
    "[9] > [0] > [1]",  # out of range, zero
    "",  # empty
    "   \n ",  # blank
    "I cannot rank these passages.",  # prose, no identifier
    "The ranking is: [2] > [3]. Passage [2] mentions 1998 and 3 steps.",  # prose around, numbers in prose
    "[1][2][3]",  # no separators
    "2 > 3 > 1",  # bare numbers
    "[02] > [001]",  # leading zeros
    "[1",  # cut-off answer (max tokens)
    "[3] > [1] > [2",  # cut-off last identifier
    "<think>maybe [1] > [2]?</think>[3] > [2]",  # reasoning, then the answer
    "<think>unterminated [2] > [1]",  # no closing tag
    "³ > ① > ❷ > ５ > 🄁",  # look-alike digits rank_llm maps
    "⑴ > [2]",  # a digit int() cannot read: rank_llm discards the answer
    "[٣] > [۲]",  # other scripts' decimal digits
    "[-1] > [-2] > [3]",  # signs are not part of numbers
    "[1.5] > [2,3]",  # decimals and commas
    "[A] > [C] > [B]",  # letters in a numeric window
    "99999999999999999999999 > [1]",  # huge number
]

HAND_PICKED_ALPHA = [
    "[C] > [A] > [B]",
    "[B] > [B] > [A]",
    "[Z] > [A]",  # out of range
    "[c] > [a]",  # lower case reads as 35, 33: out of range
    "C > A > B",  # bare letters
    "[AB] > [C]",  # two letters: "12" (L)
    "The answer is [C] > [A]",  # words become large numbers and drop out
    "I think [B]",  # "I" is the ninth letter
    "",
    "[1] > [2]",  # digits in an alphabetic window
    "é > [B]",  # a non-ASCII letter
    "<think>[A]</think> [B] > [A]",
    "Ａ > Ｂ",  # full-width letters are letters
]


@pytest.mark.parametrize("text", HAND_PICKED)
@pytest.mark.parametrize("n", [1, 3, 5, 20])
def test_hand_picked_numeric_outputs(text, n, rank_llm_parsers):
    check(rank_llm_parsers, text, n, "numeric")


@pytest.mark.parametrize("text", HAND_PICKED_ALPHA)
@pytest.mark.parametrize("n", [1, 3, 12, 20])
def test_hand_picked_alphabetic_outputs(text, n, rank_llm_parsers):
    check(rank_llm_parsers, text, n, "alpha")


def test_counts_of_the_repairs(rank_llm_parsers):
    p = check(rank_llm_parsers, "[3] > [9] > [3] > [0] > [1]", 5, "numeric")
    assert (p.unknown, p.duplicate, p.missing, p.repaired, p.failed) == (2, 1, 3, True, False)
    p = check(rank_llm_parsers, "⑴ > [2]", 5, "numeric")
    assert p.unreadable and p.failed and p.order == (0, 1, 2, 3, 4)


_token = st.one_of(
    st.integers(-5, 40).map(lambda i: f"[{i}]"),
    st.integers(-5, 40).map(str),
    st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcz")).map(lambda c: f"[{c}]"),
    st.sampled_from(["³", "①", "❸", "５", "🄂", "⑴", "٣", "⓪", "Ａ", "é", "I", "The", "</think>", "<think>",
                     "[", "]", ">", " > ", "\n", ", ", "passage", "1998"]),
    st.integers(0, 10**30).map(str),
    st.text(max_size=6),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(_token, max_size=40), sep=st.sampled_from([" > ", ">", " ", "", "\n", ", "]),
       n=st.integers(1, 26), alpha=st.booleans())
def test_fuzzed_outputs_give_rank_llms_order(tokens, sep, n, alpha, rank_llm_parsers):
    check(rank_llm_parsers, sep.join(tokens), n, "alpha" if alpha else "numeric")


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=80), n=st.integers(1, 20), alpha=st.booleans())
def test_arbitrary_unicode_gives_rank_llms_order(text, n, alpha, rank_llm_parsers):
    check(rank_llm_parsers, text, n, "alpha" if alpha else "numeric")


# -- end to end: several windows, the same scripted model on both sides -------------------------

def scripted_answer(prompt: str) -> str:
    """A deterministic 'model': a malformed ranking that depends on the prompt it is given."""
    import hashlib
    import random

    n = prompt.count("\n[")
    rng = random.Random(hashlib.sha256(prompt.encode()).hexdigest())
    ids = [str(rng.randint(0, n + 3)) for _ in range(rng.randint(0, n + 4))]
    seps = [" > ", ">", " ", ", ", " > Passage "]
    return "Ranking: " + "".join(f"[{i}]{rng.choice(seps)}" for i in ids) + rng.choice(["", "[", "I think so."])


class ScriptedHF:
    """The hf backend with its generation replaced by :func:`scripted_answer` of the rendered prompt."""

    def __init__(self, backend):
        self.inner = backend
        self.seen: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, prompts, max_new_tokens, sampling=None):
        out = []
        for p in prompts:
            text = self.inner.render(p)
            self.seen.append(text)
            out.append(Generation(scripted_answer(text), 0, 0))
        return out


@pytest.mark.parametrize("template,n,window,stride", [("rank-zephyr", 45, 20, 10), ("rank-gpt", 30, 20, 10),
                                                      ("rank-zephyr", 23, 10, 4)])
def test_sliding_windows_end_to_end_with_a_malformed_model(template, n, window, stride, rank_llm_backend):
    docs = [Doc(f"d{i}", f"passage {i} about [{i % 7}] topic {i * 37 % 11}") for i in range(n)]
    query = "which [1] passage?"
    backend = ScriptedHF(rank_llm_backend)
    from rerankkit.backends.base import Capability

    backend.capabilities = Capability.GENERATE | Capability.SCORE
    rr = Reranker("listwise-smollm2-135m", backend_instance=backend, template=template, window=window,
                  stride=stride)
    ranking = rr.rerank_many([(Query("q", query), docs)])[0]

    engine = ref.ScriptedEngine(rank_llm_backend.tokenizer, scripted_answer)
    theirs = ref.reranker(engine, template, window=window, stride=stride)
    res = theirs.rerank_batch([ref.request(query, docs)], rank_start=0, rank_end=n, top_k_retrieve=n)[0]
    assert backend.seen == engine.prompts  # every window's prompt, in order
    assert ranking.docids == [c.docid for c in res.candidates]
    assert ranking.metadata["windows"] == len(engine.prompts)


def test_generation_end_to_end_with_the_same_model(rank_llm_env, rank_llm_eos_dir):
    """rerankkit's own greedy generation on the hf backend and rank_llm's (vLLM's min_tokens = max_tokens =
    its answer estimate, here run by transformers) give the same text and the same order, on a tiny
    model that would often stop early."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit.backends.hf import HFBackend

    template, n, window, stride = "rank-zephyr", 10, 6, 3  # (RankGPT differs only in its prompt, checked above)
    docs = [Doc(f"d{i}", f"passage {i} about topic {i * 37 % 11} and more words") for i in range(n)]
    backend = HFBackend(str(rank_llm_eos_dir), dtype="fp32", batch_size=1)
    seen: dict[str, str] = {}
    lengths: list[int] = []
    generate = backend.generate

    def recording(prompts, max_new_tokens, sampling=None):
        outs = generate(prompts, max_new_tokens, sampling)
        seen.update({backend.render(p): g.text for p, g in zip(prompts, outs)})
        lengths.extend(g.generated_tokens for g in outs)
        return outs

    backend.generate = recording
    ranking = Reranker("listwise-smollm2-135m", backend_instance=backend, template=template, window=window,
                       stride=stride).rerank("which passage?", docs)
    tok = AutoTokenizer.from_pretrained(rank_llm_eos_dir)
    model = AutoModelForCausalLM.from_pretrained(rank_llm_eos_dir, dtype=torch.float32).eval()
    engine = ref.TransformersEngine(model, tok)
    theirs = ref.reranker(engine, template, window=window, stride=stride)
    res = theirs.rerank_batch([ref.request("which passage?", docs)], rank_start=0, rank_end=n, top_k_retrieve=n)[0]
    assert list(seen) == engine.prompts and list(seen.values()) == engine.texts
    assert engine.lengths == [theirs.num_output_tokens(6), theirs.num_output_tokens(6), theirs.num_output_tokens(4)]
    assert lengths == engine.lengths
    assert ranking.docids == [c.docid for c in res.candidates]
    lengths.clear()
    Reranker("listwise-smollm2-135m", backend_instance=backend, template=template, window=window, stride=stride,
             min_new_tokens=0).rerank("which passage?", docs)
    assert sum(lengths) < sum(engine.lengths)  # left free, this model stops early
