"""Listwise generation and FIRST through the real hf backend code paths, on a tiny random Llama."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from rerankkit import Doc, Query, Reranker  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402

DOCS = [Doc(f"d{i}", f"passage {i}: " + " ".join(f"word{i}x{k}" for k in range(8))) for i in range(7)]


@pytest.fixture(scope="module")
def backend(tiny_causal_dir):
    return HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=4)


def _letter_logprobs(backend, prompt, letters):
    """log p(letter) after the prompt, by a plain forward here, and the 30th largest log-prob."""
    import torch

    ids = backend.tokenizer(backend.render(prompt), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(input_ids=ids).logits[0, -1].float(), dim=-1)
    kth = float(torch.topk(logp, 30).values[-1])
    return [float(logp[backend.tokenizer.convert_tokens_to_ids(c)]) for c in letters], kth


def test_first_orders_by_an_independent_forward_of_the_identifier_letters(backend):
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator

    rr = Reranker("first-smollm2-135m", backend_instance=backend)
    ranking = rr.rerank("which passage?", DOCS)
    letters = "ABCDEFG"
    # the same window the strategy sent, rendered and scored here without the backend's score()
    p, ids = rr.strategy.window_prompt(Query("q", "which passage?"), DOCS, QueryContext(backend, Truncator(backend, None)))
    assert ids == list(letters)
    assert backend.render(p).endswith("<|im_start|>assistant\n[")
    lp, kth = _letter_logprobs(backend, p, letters)
    # rank_llm's rule: letters among the 30 most likely tokens by log-prob, the rest in input order
    key = [(-v if v >= kth else float("inf"), i) for i, v in enumerate(lp)]
    expected = [DOCS[i].docid for _, i in sorted(key)]
    assert ranking.docids == expected
    assert ranking.metadata["first_outside_top_k"] == sum(v < kth for v in lp)
    assert ranking.metadata["model_calls"] == 1 and backend.usage.generated_tokens == 0

    rall = Reranker("first-smollm2-135m", backend_instance=backend, top_logprobs="none").rerank("which passage?", DOCS)
    assert rall.docids == [DOCS[i].docid for i in sorted(range(7), key=lambda i: -lp[i])]


def test_generation_is_bounded_repaired_and_batched_across_queries(backend):
    rr = Reranker("listwise-smollm2-135m", backend_instance=backend, window=4, stride=2)
    before = backend.usage.snapshot()
    items = [(Query("a", "first query"), DOCS), (Query("b", "second query"), DOCS[:5])]
    rankings = rr.rerank_many(items)
    used = {k: v - before[k] for k, v in backend.usage.snapshot().items()}
    answer_tokens = backend.count_tokens(["[1] > [2] > [3] > [4]"])[0] - 1  # rank_llm's estimate
    assert used["generated_tokens"] <= used["model_calls"] * answer_tokens
    # 7 docs -> 3 windows, 5 docs -> 2 windows; rounds share generate calls (one per round and answer size)
    assert used["model_calls"] == 5 and used["batches"] <= 4
    for (q, docs), r in zip(items, rankings):
        assert sorted(r.docids) == sorted(d.docid for d in docs)
        assert r.metadata["windows"] == (3 if q.qid == "a" else 2)
        assert "parse_missing_ids" in r.metadata  # random weights: every repair is counted, none lost


def test_a_window_over_max_length_is_cut_evenly_with_the_real_tokenizer(tiny_causal_dir):
    be = HFBackend(str(tiny_causal_dir), dtype="fp32", max_length=420)
    long_docs = [Doc(f"L{i}", f"start{i} " + "lorem ipsum dolor sit amet " * 40) for i in range(6)]
    rr = Reranker("first-smollm2-135m", backend_instance=be)
    r = rr.rerank("q", long_docs)
    assert r.metadata["budget_truncated_windows"] == 1 and r.metadata["budget_truncated_docs"] == 6
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator

    ctx = QueryContext(be, Truncator(be, rr.strategy.max_doc_tokens))
    prompt, _ = rr.strategy.window_prompt(Query("q", "q"), long_docs, ctx)
    rendered = be.render(prompt)
    assert be.count_tokens([rendered])[0] <= 420 - 1
    assert all(f"start{i} " in rendered for i in range(6))  # truncated, never dropped
