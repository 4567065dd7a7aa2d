"""The hf backend's ``fp32_choices``: a bf16 model's answer-choice logits recomputed in fp32 from its output head's
input, on every scoring path (packed prefix-cache forwards, plain batches, a seq2seq decoder)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rerankkit.backends.base import Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.choice_head import ChoiceHead  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402

CHOICES = (" A", " B")


def prompts() -> list[Prompt]:
    q = "what causes the northern lights"
    p = ["Charged particles from the sun hit gases in the upper atmosphere.", "A recipe for lemon cake.",
         "Auroras are best seen in winter, far from city lights."]
    return [Prompt.user(f'Query: "{q}". Which passage is more relevant?\n\nPassage A: "{a}"\n\nPassage B: "{b}"\n\n'
                        "Output Passage A or Passage B:", prefix="Passage") for a in p for b in p if a != b]


@pytest.fixture(scope="module")
def loud_causal_dir(tmp_path_factory, tiny_causal_dir):
    """The tiny Llama with an untied output head scaled so its logits reach ~±20, where bf16 steps by 0.125."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(tiny_causal_dir)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone() * 400)
    out = tmp_path_factory.mktemp("loud-llama")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_causal_dir).save_pretrained(out)
    return out


def by_hand(backend: HFBackend, prompt: Prompt, seq2seq: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(choice log-odds against the first from the head input this very forward saw, in fp32; the same from the
    model's own logits): a ``fp32_choices=false`` backend's score() with the test's own hook on the head."""
    seen = []
    handle = backend.model.get_output_embeddings().register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    try:
        model_logp = backend.score([ScoreRequest(prompt, CHOICES)])[0]
    finally:
        handle.remove()
    hidden = seen[-1]
    row = hidden[0, len(backend.decoder_ids(prompt.prefix)) - 1] if seq2seq else hidden.reshape(-1, hidden.shape[-1])[-1]
    ids = [backend.continuation_ids(backend.render(prompt) if not seq2seq else prompt.prefix, c)[0] for c in CHOICES]
    w = backend.model.get_output_embeddings().weight
    exact = (row.float() @ w[ids].float().T).detach().numpy()
    return exact - exact[0], model_logp - model_logp[0]


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_causal_choices_are_fp32_from_the_head_input(loud_causal_dir, prefix_cache):
    on = HFBackend(str(loud_causal_dir), dtype="bf16", prefix_cache=prefix_cache)
    off = HFBackend(str(loud_causal_dir), dtype="bf16", prefix_cache=prefix_cache, fp32_choices=False)
    assert on.choice_head is not None and off.choice_head is None
    moved = 0
    for p in prompts():
        exact, model_odds = by_hand(off, p)
        got = on.score([ScoreRequest(p, CHOICES)])[0]
        np.testing.assert_allclose(got - got[0], exact, atol=1e-4)  # the same forward, its choices in fp32
        moved += abs(model_odds[1] - exact[1]) > 1e-3  # the model's bf16 logits are rounded
    assert moved >= 3


def test_packed_prompts_get_their_own_rows(loud_causal_dir):
    on = HFBackend(str(loud_causal_dir), dtype="bf16", prefix_cache=True)
    off = HFBackend(str(loud_causal_dir), dtype="bf16", prefix_cache=True, fp32_choices=False)
    reqs = [ScoreRequest(p, CHOICES) for p in prompts()]
    seen = []
    head = off.model.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    try:
        off.score(reqs)
    finally:
        handle.remove()
    assert len(seen) == 1 and seen[0].shape[1] == len(reqs)  # one packed forward, a kept row per prompt
    ids = [off.continuation_ids(off.render(r.prompt), c)[0] for r in reqs for c in CHOICES][:2]
    exact = (seen[0][0].float() @ head.weight[ids].float().T).detach().numpy()  # rows in the pack's order
    model = np.array(off.score(reqs))
    got = np.array(on.score(reqs))
    odds, model_odds = got[:, 1] - got[:, 0], model[:, 1] - model[:, 0]
    np.testing.assert_allclose(np.sort(odds), np.sort(exact[:, 1] - exact[:, 0]), atol=1e-4)
    # and each prompt got its own row: within bf16 rounding of its own model log-odds (|odds| < 128: step 0.5)
    assert np.ptp(model_odds) > 5 and np.abs(odds - model_odds).max() <= 0.5


def test_seq2seq_choices_are_fp32(tiny_seq2seq_dir):
    on = HFBackend(str(tiny_seq2seq_dir), dtype="bf16")
    off = HFBackend(str(tiny_seq2seq_dir), dtype="bf16", fp32_choices=False)
    assert on.choice_head is not None
    for p in prompts()[:3]:
        exact, _ = by_hand(off, p, seq2seq=True)
        got = on.score([ScoreRequest(p, CHOICES)])[0]
        np.testing.assert_allclose(got - got[0], exact, atol=1e-4)


def test_not_attached_where_it_cannot_apply(tiny_causal_dir):
    fp32 = HFBackend(str(tiny_causal_dir), dtype="fp32")
    assert fp32.choice_head is None  # fp32 weights: the model's logits are fp32 already
    model = fp32.model
    assert ChoiceHead.attach(model, torch) is None
    model.config.final_logit_softcapping = 30.0  # logits capped after the head (Gemma 2): not a plain head
    assert ChoiceHead.attach(model.to(torch.bfloat16), torch) is None
