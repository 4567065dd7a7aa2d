"""Every strategy the vllm backend's capabilities allow, on vLLM's CPU build, against hf on the same prompts.

Generation strategies decode greedily in fp32 on both engines, so they produce the same text and rankings;
embeddings go through vLLM's pooling runner with the packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import numpy as np
import pytest

from rerankkit import Reranker
from rerankkit.backends.base import Prompt, Sampling, ScoreRequest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _both(preset, smol_hf, smol_vllm, items, **overrides):
    a = Reranker(preset, backend_instance=smol_hf, **overrides).rerank_many(items)
    b = Reranker(preset, backend_instance=smol_vllm, **overrides).rerank_many(items)
    for (_, docs), rb in zip(items, b):
        assert sorted(rb.docids) == sorted(d.docid for d in docs)  # a permutation: nothing lost or doubled
    return a, b


@pytest.mark.parametrize("preset,overrides", [
    ("prp-smollm2-135m", {"method": "sliding", "k": 2, "mode": "generate"}),
    ("listwise-smollm2-135m", {"window": 5, "stride": 3}),
    ("grouprank-smollm2-135m", {"group_size": 5, "max_new_tokens": 40}),
])
def test_generation_strategies_decode_like_hf(smol_hf, smol_vllm, dl19, preset, overrides):
    before = smol_vllm.usage.snapshot()
    a, b = _both(preset, smol_hf, smol_vllm, dl19(1, 5), **overrides)
    assert a[0].docids == b[0].docids
    assert {k: v for k, v in a[0].metadata.items() if isinstance(v, int)} == \
        {k: v for k, v in b[0].metadata.items() if isinstance(v, int)}  # same repairs, parse failures, calls
    used = smol_vllm.usage.snapshot()
    assert used["generated_tokens"] > before["generated_tokens"]


def test_first_single_token_listwise_matches_hf(smol_hf, smol_vllm, dl19):
    a, b = _both("first-smollm2-135m", smol_hf, smol_vllm, dl19(1, 8), window=8, stride=4)
    assert [r.docids for r in a] == [r.docids for r in b]


def test_generated_text_is_greedy_and_identical(smol_hf, smol_vllm):
    prompts = [Prompt.user("Name three colours."), Prompt.user("What is 2+2?", system="Answer briefly.")]
    ga, gb = smol_hf.generate(prompts, 24), smol_vllm.generate(prompts, 24)
    assert [g.text for g in ga] == [g.text for g in gb]
    assert [g.prompt_tokens for g in ga] == [g.prompt_tokens for g in gb]


def test_seeded_sampling_repeats_whatever_else_is_in_the_batch(smol_vllm):
    """Sampling reaches vLLM's SamplingParams: a seeded request decodes the same text alone and in a batch
    with other prompts; at temperature 1.5 the texts are not all the greedy ones."""
    p = Prompt.user("Write a short sentence about the sea.")
    others = [Prompt.user("Name three colours."), Prompt.user("What is 2+2?")]
    hot = Sampling(temperature=1.5, top_p=0.95, seed=11)
    alone = smol_vllm.generate([p], 24, hot)[0].text
    batched = smol_vllm.generate([*others, p], 24, [Sampling(1.5, 0.95, 3), Sampling(1.5, 0.95, 4), hot])
    assert batched[2].text == alone
    greedy = [g.text for g in smol_vllm.generate([*others, p], 24)]
    assert [g.text for g in batched] != greedy


def test_a_prompt_longer_than_the_context_is_cut_and_counted(smol_hf, smol_vllm):
    """2048-token engine context: a ~3,000-token prompt is cut from the left (as hf's max_length cuts), not
    an engine error, and counted; the answer is then that of the cut prompt."""
    long = "the quick brown fox jumps over the lazy dog " * 330
    req = ScoreRequest(Prompt.user(long + "\nIs this about a fox? Answer Yes or No."), ("Yes", "No"))
    before = smol_vllm.usage.snapshot()["truncated_prompts"]
    [scores] = smol_vllm.score([req])
    assert np.all(np.isfinite(scores))
    assert smol_vllm.usage.snapshot()["truncated_prompts"] == before + 1
    gens = smol_vllm.generate([req.prompt], 8)
    assert gens[0].prompt_tokens == 2048 - 8 and smol_vllm.usage.snapshot()["truncated_prompts"] == before + 2
    # the same cut in hf (max_length) gives the same answer log-probs
    cut = smol_vllm.tok.encode(smol_vllm.render(req.prompt))[-2047:]
    smol_hf.max_length = 2047
    try:
        [ref] = smol_hf.score([req])
    finally:
        smol_hf.max_length = None
    assert len(cut) == 2047 and np.allclose(ref - ref.max(), scores - scores.max(), atol=1e-3)


@pytest.fixture(scope="module")
def minilm_vllm(engine_options):
    from rerankkit.backends.vllm import VLLMBackend

    backend = VLLMBackend("packaged:all-minilm-l6-v2", task="embed", **{**engine_options, "max_model_len": None})
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def minilm_hf():
    from rerankkit.backends.hf import HFBackend

    return HFBackend("packaged:all-minilm-l6-v2", dtype="fp32", device="cpu")


@pytest.mark.parametrize("preset", ["cosine-minilm", "e2rank-minilm"])
def test_embedding_rerankers_through_the_pooling_runner(minilm_hf, minilm_vllm, dl19, preset):
    items = dl19(2, 10)
    a = Reranker(preset, backend_instance=minilm_hf).rerank_many(items)
    b = Reranker(preset, backend_instance=minilm_vllm).rerank_many(items)
    for ra, rb in zip(a, b):
        sa = {sd.docid: sd.score for sd in ra.docs}
        assert max(abs(sa[sd.docid] - sd.score) for sd in rb.docs) < 1e-4
        assert ra.docids == rb.docids


def test_embeddings_match_sentence_transformers_pooling(minilm_hf, minilm_vllm):
    texts = ["BM25 is a bag-of-words ranking function.", "", "cats " * 400]  # empty, and past 256 tokens
    va, vb = minilm_hf.embed(texts), minilm_vllm.embed(texts)
    assert vb.shape == (3, 384) and np.allclose(np.linalg.norm(vb, axis=1), 1.0, atol=1e-5)
    assert np.max(np.abs(va - vb)) < 1e-4
    assert minilm_vllm.max_model_len == 256  # the folder's sentence-transformers max_seq_length
