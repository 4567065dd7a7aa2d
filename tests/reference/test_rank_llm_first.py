"""FIRST ranks a window as rank_llm does from the same first-identifier log-probs.

rank_llm (``use_logits=True, use_alpha=True``) generates two tokens, reads vLLM's top-30 log-probs
at the second (after the "[" the model writes), orders the identifier letters found there and
appends the others in input order. Here its engine is a transformers model (the "[" forced); the
model is a tiny random Llama whose output rows for the letters are rescaled, so some letters land
inside the top 30 and some outside it, in every window.
"""

from __future__ import annotations

import pytest
import rank_llm_ref as ref
from rank_llm_fixtures import *  # noqa: F403  (the rank_llm_* fixtures)

from rerankkit import Doc, Query, Reranker


@pytest.fixture(scope="session")
def rank_llm_first_dir(tmp_path_factory, rank_llm_tiny_dir):
    import string

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rank_llm_tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(rank_llm_tiny_dir, dtype=torch.float32)
    weight = model.get_output_embeddings().weight.detach().clone()
    letters = tok.convert_tokens_to_ids(list(string.ascii_uppercase[:20]))
    weight[letters[:12]] *= 40.0  # A..L: logits of large magnitude, either sign: inside or far outside the top 30
    weight[letters[12:]] *= 0.001  # M..T: logits near 0, below the 30 largest of ~49k random logits
    model.config.tie_word_embeddings = False
    model.lm_head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    model.lm_head.weight = torch.nn.Parameter(weight)
    out = tmp_path_factory.mktemp("tiny-llama-first")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _docs(n, seed):
    import random

    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "ran", "to", "see", "what", "the", "dog", "had", "done", "in", "this", "old", "house"]
    return [Doc(f"s{seed}d{i}", " ".join(rng.choice(words) for _ in range(rng.randint(5, 40))),
                title=rng.choice(["", "A title"])) for i in range(n)]


@pytest.mark.parametrize("n,window,stride", [(20, 20, 10), (35, 20, 10), (12, 6, 3)])
def test_first_gives_rank_llms_order_from_the_same_logits(n, window, stride, rank_llm_first_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit.backends.hf import HFBackend

    backend = HFBackend(str(rank_llm_first_dir), dtype="fp32", batch_size=4)
    rr = Reranker("first-smollm2-135m", backend_instance=backend, template="first-rankllm", window=window,
                  stride=stride)
    items = [(Query(f"q{s}", f"query number {s} about the dog"), _docs(n, s)) for s in range(3)]
    rankings = rr.rerank_many(items)  # lock-step: the windows of the 3 queries share backend calls

    tok = AutoTokenizer.from_pretrained(rank_llm_first_dir)
    model = AutoModelForCausalLM.from_pretrained(rank_llm_first_dir, dtype=torch.float32).eval()
    engine = ref.TransformersEngine(model, tok, first_token="[")
    theirs = ref.reranker(engine, "first-rankllm", window=window, stride=stride, use_logits=True)
    outside = 0
    for (query, docs), ranking in zip(items, rankings):
        res = theirs.rerank_batch([ref.request(query.text, docs)], rank_start=0, rank_end=n, top_k_retrieve=n)[0]
        assert ranking.docids == [c.docid for c in res.candidates]
        m = ranking.metadata
        assert m["windows"] == m["model_calls"]
        outside += m["first_outside_top_k"]
    windows = sum(r.metadata["windows"] for r in rankings)
    assert 0 < outside < windows * window  # both rules were exercised: sorted and kept in input order


def test_without_the_top_k_rule_every_identifier_is_sorted(rank_llm_first_dir):
    from rerankkit.backends.hf import HFBackend

    backend = HFBackend(str(rank_llm_first_dir), dtype="fp32")
    docs = _docs(20, 7)
    r30 = Reranker("first-smollm2-135m", backend_instance=backend, template="first-rankllm").rerank("q", docs)
    rall = Reranker("first-smollm2-135m", backend_instance=backend, template="first-rankllm",
                    top_logprobs="none").rerank("q", docs)
    assert r30.metadata["first_outside_top_k"] > 0 and rall.metadata["first_outside_top_k"] == 0
    inside = 20 - r30.metadata["first_outside_top_k"]
    assert r30.docids[:inside] == rall.docids[:inside]  # the letters in the top 30 lead both orders
    assert sorted(r30.docids) == sorted(rall.docids)
