"""The hf backend's shape rounding (``pad_multiple``): every forward's length rounded up with masked filler
gives the answers of unrounded forwards (fp32, up to the order of float sums) on every path that pads —
packed prefix-cache scoring, plain batches, generation, causal and encoder embeddings, a seq2seq encoder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from rerankkit.backends.base import Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.hf import HFBackend, default_pad_multiple, round_up  # noqa: E402
from rerankkit.backends.prefix_cache import pad_allowed  # noqa: E402

QUERY = "what causes the northern lights"
PASSAGES = [
    "Auroras are caused by charged particles from the sun hitting gases in the upper atmosphere.",
    "The northern lights are best seen in winter, far from city lights.",
    "A recipe for lemon cake: flour, sugar, eggs, butter and two lemons.",
]


def pair(a: str, b: str) -> Prompt:
    return Prompt.user(f'Query: "{QUERY}". Which passage is more relevant?\n\nPassage A: "{a}"\n\n'
                       f'Passage B: "{b}"\n\nOutput Passage A or Passage B:', prefix="Passage")


def requests() -> list[list[ScoreRequest]]:
    p = PASSAGES
    one = [[ScoreRequest(pair(a, b), (" A", " B"))] for a, b in ((p[0], p[1]), (p[1], p[0]), (p[0], p[2]))]
    many = [ScoreRequest(pair(a, b), (" A", " B", " Passage A")) for a in p for b in p if a != b]
    return [*one, many]


def test_round_up_and_filler_mask():
    assert [round_up(n, 16) for n in (1, 16, 17, 33)] == [16, 16, 32, 48]
    assert round_up(7, 1) == 7
    allowed = np.array([[True, False, True], [True, True, True]])
    grown = pad_allowed(allowed, 2)
    assert grown.shape == (4, 5)
    assert (grown[:2, :3] == allowed).all() and not grown[:2, 3:].any()  # real tokens never see filler
    assert grown[2:, :3].sum() == 0 and grown[2, 3] and grown[3, 4] and not grown[2, 4]  # filler: itself only
    assert pad_allowed(allowed, 0) is allowed


def test_default_rounds_only_reduced_precision_on_cpu():
    assert default_pad_multiple("cpu", "bfloat16") == 16 == default_pad_multiple("cpu", "float16")
    assert default_pad_multiple("cpu", "float32") == 1
    assert default_pad_multiple("cuda", "bfloat16") == 1


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_rounded_scores_equal_unrounded(tiny_causal_dir, prefix_cache):
    base = HFBackend(str(tiny_causal_dir), dtype="fp32", prefix_cache=prefix_cache)
    rounded = HFBackend(str(tiny_causal_dir), dtype="fp32", prefix_cache=prefix_cache, pad_multiple=64)
    assert base.pad_multiple == 1 and rounded.pad_multiple == 64
    for reqs in requests():
        for g, w in zip(rounded.score(reqs), base.score(reqs)):
            np.testing.assert_allclose(g, w, atol=2e-5)
    if prefix_cache:  # filler is neither stored nor counted: both caches hold the same tokens
        assert rounded.prefix.computed == base.prefix.computed and len(rounded.prefix) == len(base.prefix)


def test_rounded_generation_and_causal_embeddings_equal_unrounded(tiny_causal_dir):
    base = HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=3)
    rounded = HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=3, pad_multiple=32)
    prompts = [pair(a, b) for a in PASSAGES for b in PASSAGES if a != b]
    assert [g.text for g in rounded.generate(prompts, 6)] == [g.text for g in base.generate(prompts, 6)]
    np.testing.assert_allclose(rounded.embed(PASSAGES), base.embed(PASSAGES), atol=1e-5)
    h1, l1 = rounded.represent(prompts[:3])
    h0, l0 = base.represent(prompts[:3])
    np.testing.assert_allclose(h1, h0, atol=1e-4)
    np.testing.assert_allclose(l1, l0, atol=1e-4)


def test_rounded_encoder_and_seq2seq_equal_unrounded(tiny_seq2seq_dir):
    base = HFBackend("packaged:all-minilm-l6-v2", dtype="fp32", batch_size=2)
    rounded = HFBackend("packaged:all-minilm-l6-v2", dtype="fp32", batch_size=2, pad_multiple=16)
    np.testing.assert_allclose(rounded.embed(PASSAGES), base.embed(PASSAGES), atol=1e-5)
    t5 = HFBackend(str(tiny_seq2seq_dir), dtype="fp32")
    t5r = HFBackend(str(tiny_seq2seq_dir), dtype="fp32", pad_multiple=16)
    for reqs in requests():
        for g, w in zip(t5r.score(reqs), t5.score(reqs)):
            np.testing.assert_allclose(g, w, atol=2e-5)


def test_rounding_never_passes_the_context(tiny_causal_dir):
    be = HFBackend(str(tiny_causal_dir), dtype="fp32", pad_multiple=1_000_000)
    assert be._width(5) == be.context_length()
    assert be._width(be.context_length() + 3) == be.context_length() + 3  # too long already: left as it is
