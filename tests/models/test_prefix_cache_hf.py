"""The hf backend's prefix cache against plain padded batches, on a tiny random Llama and on SmolLM2 (fp32):
same scores (up to the order of float sums), and tokens really reused."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.base import Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402

QUERY = "what causes the northern lights"
PASSAGES = [
    "Auroras are caused by charged particles from the sun hitting gases in the upper atmosphere.",
    "The northern lights are best seen in winter, far from city lights, in Norway or Canada.",
    "A recipe for lemon cake: flour, sugar, eggs, butter and two lemons.",
    "Solar wind particles are guided by the magnetic field towards the poles, where they excite oxygen.",
]
CHOICES = (" A", " B")


def pair(a: str, b: str) -> Prompt:
    return Prompt.user(f'Given a query "{QUERY}", which passage is more relevant?\n\nPassage A: "{a}"\n\n'
                       f'Passage B: "{b}"\n\nOutput Passage A or Passage B:', prefix="Passage")


def calls() -> list[list[ScoreRequest]]:
    """A sort's calls: both orders of a pair, then the next pair starting with one of the last passages;
    a prompt asked twice; and a call of many prompts that share the query."""
    p = PASSAGES
    seq = [[ScoreRequest(pair(a, b), CHOICES), ScoreRequest(pair(b, a), CHOICES)]
           for a, b in ((p[0], p[1]), (p[1], p[2]), (p[1], p[3]), (p[0], p[1]))]
    many = [ScoreRequest(pair(a, b), CHOICES) for a in p for b in p if a != b]
    return [*seq, many]


@pytest.fixture(scope="module")
def plain(tiny_causal_dir):
    return HFBackend(str(tiny_causal_dir), dtype="fp32", prefix_cache=False)


@pytest.mark.parametrize("options", [
    {},  # the defaults
    {"pack_tokens": 150, "batch_size": 5},  # many packs per call
    {"pack_tokens": 16},  # every prompt longer than a pack: plain forwards, nothing kept
    {"prefix_cache_tokens": 300},  # the cache keeps about two prompts: least recently used dropped all along
])
def test_packed_scores_equal_plain_batches(tiny_causal_dir, plain, options):
    be = HFBackend(str(tiny_causal_dir), dtype="fp32", **options)
    assert be.prefix is not None and plain.prefix is None
    assert be.options() == plain.options()  # the same answers: the same answer-cache keys
    for reqs in calls():
        got, want = be.score(reqs), plain.score(reqs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=2e-5)
    if be.pack_tokens > 16:
        assert be.prefix.reused > be.prefix.computed / 3  # the shared query and passages were not recomputed
    else:
        assert be.prefix.computed == 0 and len(be.prefix) == 0
    assert len(be.prefix) <= be.prefix.capacity


def test_off_for_models_it_cannot_drive(tiny_seq2seq_dir):
    be = HFBackend(str(tiny_seq2seq_dir), dtype="fp32")
    assert be.prefix is None


def test_smollm2_prp_ranks_alike_with_and_without(smollm2_dir):
    docs = PASSAGES * 2
    runs, backends = {}, {}
    for on in (True, False):
        be = backends[on] = HFBackend(str(smollm2_dir), dtype="fp32", prefix_cache=on)
        rr = Reranker("prp-smollm2-135m", backend_instance=be, method="sliding", k=3, ties="incumbent")
        runs[on] = rr.rerank(QUERY, docs)
        if on:
            assert be.prefix.reused > be.prefix.computed  # sliding: each pair starts with the last winner
    assert runs[True].docids == runs[False].docids
    for reqs in calls():
        for g, w in zip(backends[True].score(reqs), backends[False].score(reqs)):
            np.testing.assert_allclose(g, w, atol=1e-4)
