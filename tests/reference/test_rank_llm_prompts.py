"""Window prompts are byte for byte rank_llm's (RankZephyr, RankGPT, FIRST) with the same tokenizer.

rank_llm side: ``RankListwiseOSLLM.create_prompt`` (its passage preparation, chat template, ftfy
pass and budget loop) over SmolLM2's tokenizer. rerankkit side: the strategy's window prompt as
the hf backend renders it (tiny random Llama carrying SmolLM2's tokenizer and chat template).
"""

from __future__ import annotations

import pytest
import rank_llm_ref as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_llm_fixtures import *  # noqa: F403  (the rank_llm_* fixtures)

from rerankkit import Doc, Query, Reranker
from rerankkit.strategies.base import QueryContext
from rerankkit.strategies.truncation import Truncator
from rerankkit.strategies.windows import window_schedule

PRESET = {"rank-zephyr": "listwise-smollm2-135m", "rank-gpt": "listwise-smollm2-135m",
          "first-rankllm": "first-smollm2-135m"}
TEMPLATES = list(PRESET)


def ours(backend, template, query, docs, **params):
    """rerankkit's rendered prompt for one window of ``docs`` (without FIRST's pre-filled "[")."""
    rr = Reranker(PRESET[template], backend_instance=backend, template=template, **params)
    ctx = QueryContext(backend, Truncator(backend, rr.strategy.max_doc_tokens))
    prompt, _ = rr.strategy.window_prompt(Query("q", query), docs, ctx)
    text = backend.render(prompt)
    assert text.endswith(prompt.prefix)
    return text[: len(text) - len(prompt.prefix)], ctx.counters


def theirs(backend, template, query, docs, context_size=4096, window=20):
    engine = ref.ScriptedEngine(backend.tokenizer)
    rr = ref.reranker(engine, template, window=window, context_size=context_size)
    prompt, _ = rr.create_prompt(ref.result(ref.request(query, docs)), 0, len(docs))
    return prompt


NASTY = [
    Doc("t1", "Aspirin – the “wonder drug” [2] isn\u00e2\u0080\u0099t new; caf\u00c3\u00a9 &amp; r&eacute;sum&eacute;",
        title="History of [1] aspirin"),
    Doc("t2", "  leading and trailing\tspaces\nand lines  \r\n  "),
    Doc("t3", "<b>HTML</b> &lt;tags&gt; and ﬁ ligatures, ＦＵＬＬ width, \u2028 separators"),
    Doc("t4", "", title="Only a title"),
    Doc("t5", "bracketed [12] [ 3 ] [B] [1a] ((7)) numbers and 2019"),
    Doc("t6", "word " * 500),
    Doc("t7", "日本語のテキスト、全角：１２３ and emoji 🙂"),
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_hand_picked_windows_are_identical(template, rank_llm_backend):
    for query in ["what is [1] the “best” &amp; drug?", "q"]:
        for k in (2, len(NASTY)):
            docs = NASTY[:k]
            mine, _ = ours(rank_llm_backend, template, query, docs)
            assert mine == theirs(rank_llm_backend, template, query, docs)


@pytest.mark.parametrize("template", TEMPLATES)
def test_dl19_bm25_windows_are_identical(template, rank_llm_backend, data_root):
    from rerankkit.data import load_dataset

    run = load_dataset("trec-dl-2019/passage").candidates("bm25")
    for ranking in (run[qid] for qid in list(run)[:3]):
        docs = [sd.doc for sd in ranking.docs[:20]]
        mine, _ = ours(rank_llm_backend, template, ranking.query.text, docs)
        assert mine == theirs(rank_llm_backend, template, ranking.query.text, docs)


@pytest.mark.parametrize("n", [3, 7, 15, 30])
def test_smaller_and_larger_windows_scale_the_word_cap_as_rank_llm(n, rank_llm_backend):
    docs = [Doc(f"d{i}", f"start{i} " + " ".join(["word", "cat", "dog"][k % 3] for k in range(6000 // n + 20)))
            for i in range(n)]
    mine, _ = ours(rank_llm_backend, "rank-zephyr", "q", docs, window=max(n, 2), stride=1,
                   max_prompt_tokens=100_000)
    assert mine == theirs(rank_llm_backend, "rank-zephyr", "q", docs, context_size=100_000, window=max(n, 2))


_WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "ran", "to", "see", "what", "the", "dog", "had", "done", "in", "this", "old", "house"]


def long_docs(n=20, base=60, extra=37):
    """Passages of ordinary words (about one token each), of growing length, each with its own start."""
    return [Doc(f"d{i}", f"start{i} " + " ".join(_WORDS[(k + i) % len(_WORDS)] for k in range(base + extra * i)))
            for i in range(n)]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("budget", [900, 1500, 2600, 4096])
def test_the_budget_loop_cuts_passages_as_rank_llm(template, budget, rank_llm_backend):
    docs = long_docs()
    mine, counters = ours(rank_llm_backend, template, "a query about [2] things", docs, max_prompt_tokens=budget)
    assert mine == theirs(rank_llm_backend, template, "a query about [2] things", docs, context_size=budget)
    assert counters["budget_truncated_windows"] == 1 and counters["budget_bisected_windows"] == 0
    assert all(f"start{i} " in mine for i in range(20))  # every passage still there, cut


def test_where_rank_llm_would_slice_with_a_negative_cap_the_largest_fitting_cap_is_used(rank_llm_backend):
    # passages of many tokens per word: rank_llm's first step overshoots below zero words, and
    # split()[:cap] with cap < 0 keeps all but the last |cap| words: the short passages come out empty
    docs = [Doc(f"d{i}", " ".join(f"tok{i}x{k}" for k in range(60 + 37 * i))) for i in range(20)]
    mine, counters = ours(rank_llm_backend, "rank-zephyr", "q", docs, max_prompt_tokens=2600)
    rank_llm = theirs(rank_llm_backend, "rank-zephyr", "q", docs, context_size=2600)
    assert "[1] \n" in rank_llm and "[20] tok19x0 " in rank_llm  # theirs: the shortest passage emptied
    assert counters["budget_bisected_windows"] == 1
    lines = [ln for ln in mine.splitlines() if ln.startswith("[") and " tok" in ln]
    assert len(lines) == 20 and len({len(ln.split()) for ln in lines}) == 1  # ours: one cap for all
    assert rank_llm_backend.count_tokens([mine])[0] <= 2600


def test_a_tokenizer_that_adds_bos_is_counted_as_rank_llm_counts_it(rank_llm_env, rank_llm_bos_dir):
    from rerankkit.backends.hf import HFBackend

    backend = HFBackend(str(rank_llm_bos_dir), dtype="fp32")
    docs = long_docs(base=80, extra=3)
    for budget in range(1520, 1524):  # consecutive budgets: a one-token miscount changes some prompt
        for template in ("rank-zephyr", "first-rankllm"):
            mine, _ = ours(backend, template, "q", docs, max_prompt_tokens=budget)
            assert mine == theirs(backend, template, "q", docs, context_size=budget)


_fragments = st.sampled_from([
    " ", "  ", "\n", "\t", "\r\n", "word", "Word", "[1]", "[20]", "[ 3 ]", "[B]", "(4)", "2019", "“", "”", "‘",
    "’", "â€™", "Ã©", "&amp;", "&lt;", "&#x2019;", "<", ">", "ﬁ", "ＡＢ１", "café", "naïve", "{", "}", "{query}",
    "\u00a0", "\u2028", "\x85", "日本", "🙂", "Title:", "Content:",
])
_text = st.one_of(st.lists(_fragments, max_size=25).map("".join), st.text(max_size=40))


@settings(max_examples=int(__import__("os").environ.get("RL_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(query=_text, texts=st.lists(st.tuples(_text, st.one_of(st.just(""), _text)), min_size=1, max_size=6),
       template=st.sampled_from(TEMPLATES))
def test_random_texts_give_identical_prompts(query, texts, template, rank_llm_backend):
    docs = [Doc(f"d{i}", t, title=title) for i, (t, title) in enumerate(texts)]
    mine, _ = ours(rank_llm_backend, template, query, docs)
    assert mine == theirs(rank_llm_backend, template, query, docs)


def _rank_llm_windows(n, window, stride):
    """The windows rank_llm's ``sliding_windows_batched`` asks for (its permutation step recorded)."""
    rl = ref.load()
    seen = []
    obj = rl.RankListwiseOSLLM.__new__(rl.RankListwiseOSLLM)  # no engine needed: only the loop runs
    obj._window_size, obj._stride = window, stride
    obj.permutation_pipeline_batched = lambda results, start, end, *a, **k: seen.append((start, end)) or results
    req = rl.data.Request(query=rl.data.Query("q", "q"),
                          candidates=[rl.data.Candidate(str(i), 0.0, {"text": "x"}) for i in range(n)])
    obj.sliding_windows_batched([req], 0, n, top_k_retrieve=n)
    return seen


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 120), window=st.integers(2, 30), data=st.data())
def test_window_schedule_is_rank_llms(n, window, data, rank_llm_env):
    stride = data.draw(st.integers(1, window - 1))
    theirs_ = _rank_llm_windows(n, window, stride)
    assert window_schedule(n, window, stride) == theirs_


def test_a_list_of_window_minus_stride_candidates_is_reranked(rank_llm_env):
    """A documented difference: rank_llm's rerank_batch with its default rank_end=100 and no top_k_retrieve
    asks for no window at all on 10 candidates (window 20, stride 10); rerankkit reranks them in one."""
    rl = ref.load()
    seen = []
    obj = rl.RankListwiseOSLLM.__new__(rl.RankListwiseOSLLM)
    obj._window_size, obj._stride = 20, 10
    obj.permutation_pipeline_batched = lambda results, start, end, *a, **k: seen.append((start, end)) or results
    req = rl.data.Request(query=rl.data.Query("q", "q"),
                          candidates=[rl.data.Candidate(str(i), 0.0, {"text": "x"}) for i in range(10)])
    obj.rerank_batch([req])
    assert seen == []
    assert window_schedule(10, 20, 10) == [(0, 10)]
