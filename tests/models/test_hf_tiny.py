"""The hf backend's real code paths on tiny random models built in the session (fp32)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from rerankkit.backends.base import Capability, Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402

PROMPTS = [
    Prompt.user("Passage: a short one\nQuery: q"),
    Prompt.user("Passage: " + "a much longer passage with many more words in it " * 6 + "\nQuery: something else"),
    Prompt.user("Passage: medium length passage here\nQuery: q2", system="Be brief."),
    Prompt.user("", prefix="Answer:"),
]
CHOICES = ("Yes", "No", " yes")
MULTI = ("Passage A", "Passage B")


@pytest.fixture(scope="module")
def causal(tiny_causal_dir):
    return HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=3, max_padding=1.0)  # padded batches


@pytest.fixture(scope="module")
def seq2seq(tiny_seq2seq_dir):
    return HFBackend(str(tiny_seq2seq_dir), dtype="fp32", batch_size=3, max_padding=1.0)


@pytest.mark.parametrize("choices", [CHOICES, MULTI])
@pytest.mark.parametrize("which", ["causal", "seq2seq"])
def test_batched_equals_one_at_a_time(request, which, choices):
    be = request.getfixturevalue(which)
    reqs = [ScoreRequest(p, choices) for p in PROMPTS]
    batched = be.score(reqs)
    single = [be.score([r])[0] for r in reqs]
    for a, b in zip(batched, single):
        assert np.max(np.abs(a - b)) < 1e-4
    assert all(np.all(x <= 0) for x in batched)


def test_single_token_scores_equal_a_plain_forward(causal):
    import torch

    text = causal.render(PROMPTS[1])
    ids = causal.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = causal.model(input_ids=ids).logits[0, -1]
    ref = torch.log_softmax(logits, -1)
    got = causal.score([ScoreRequest(PROMPTS[1], CHOICES)])[0]
    want = [float(ref[causal.continuation_ids(text, c)[0]]) for c in CHOICES]
    assert np.allclose(got, want, atol=1e-4)


def test_multi_token_choice_is_the_sum_of_its_token_logprobs(causal):
    import torch

    text = causal.render(PROMPTS[0])
    p_ids = causal.tokenizer(text, add_special_tokens=False)["input_ids"]
    got = causal.score([ScoreRequest(PROMPTS[0], MULTI)])[0]
    for choice, value in zip(MULTI, got):
        c = causal.continuation_ids(text, choice)
        assert len(c) > 1
        with torch.no_grad():
            lp = torch.log_softmax(causal.model(input_ids=torch.tensor([p_ids + c])).logits[0], -1)
        want = sum(float(lp[len(p_ids) - 1 + t, tok]) for t, tok in enumerate(c))
        assert value == pytest.approx(want, abs=1e-4)


def test_generation_is_deterministic_and_batch_independent(causal, seq2seq):
    for be in (causal, seq2seq):
        a = be.generate(PROMPTS, max_new_tokens=5)
        b = [be.generate([p], max_new_tokens=5)[0] for p in PROMPTS]
        assert [g.text for g in a] == [g.text for g in b]
        assert all(g.generated_tokens <= 5 for g in a)


def test_sampled_generation_is_seeded_and_leaves_the_global_generator_alone(causal, seq2seq):
    import torch

    from rerankkit.backends.base import Sampling

    for be in (causal, seq2seq):
        hot = [Sampling(1.5, 1.0, 11)] * 3
        torch.manual_seed(0)
        before = torch.rand(1)
        torch.manual_seed(0)
        a = be.generate(PROMPTS[:3], max_new_tokens=12, sampling=hot)
        assert torch.equal(torch.rand(1), before)  # the batch's seeding did not move the global generator
        b = be.generate(PROMPTS[:3], max_new_tokens=12, sampling=hot)
        assert [g.text for g in a] == [g.text for g in b]  # same requests, same batches: same texts
        other = be.generate(PROMPTS[:3], max_new_tokens=12, sampling=[Sampling(1.5, 1.0, 12)] * 3)
        greedy = be.generate(PROMPTS[:3], max_new_tokens=12)
        assert [g.text for g in other] != [g.text for g in a]  # another seed, other samples
        mixed = be.generate(PROMPTS[:3], max_new_tokens=12, sampling=[Sampling(), hot[0], Sampling()])
        assert [mixed[0].text, mixed[2].text] == [greedy[0].text, greedy[2].text]  # greedy rows stay greedy


def test_embed_and_represent_shapes(causal):
    v = causal.embed(["one text", "another, longer text for embedding", ""])
    assert v.shape == (3, 64)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    single = causal.embed(["another, longer text for embedding"])
    assert np.allclose(single[0], v[1], atol=1e-4)
    h, logits = causal.represent(PROMPTS[:2])
    assert h.shape == (2, 64) and logits.shape[0] == 2 and logits.shape[1] >= len(causal.tokenizer)
    assert Capability.REPRESENT in causal.capabilities


def test_usage_counts_calls_and_tokens(causal):
    before = causal.usage.snapshot()
    causal.score([ScoreRequest(p, CHOICES) for p in PROMPTS[:2]])
    after = causal.usage.snapshot()
    assert after["model_calls"] - before["model_calls"] == 2
    assert after["prompt_tokens"] - before["prompt_tokens"] == sum(
        len(causal.encode(causal.render(p))) for p in PROMPTS[:2])


def test_truncate_and_count(causal):
    text = "word " * 100
    cut = causal.truncate(text, 10)
    assert causal.count_tokens([cut])[0] <= 10
    assert causal.truncate("short", 10) == "short"
