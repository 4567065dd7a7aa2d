"""vLLM in-process (CPU build, fp32) against the hf backend on the same model, prompts and DL19 candidates.

The full measurement (10 queries x 20 documents) is eval/vllm_parity.py; here a slice of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))

from vllm_parity import decision_parity, pointwise_parity  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_pointwise_log_odds_match_hf(smol_hf, smol_vllm, dl19):
    rep = pointwise_parity(smol_hf, smol_vllm, dl19(3, 10))
    assert rep["documents"] == 30
    assert rep["max_abs_delta"] < 1e-3, rep  # fp32 on both sides: the same numbers up to kernel rounding
    assert rep["min_kendall_tau"] >= 0.99, rep
    assert smol_vllm.usage.snapshot()["truncated_prompts"] == 0


@pytest.mark.parametrize("preset,method", [("prp-smollm2-135m", "sliding"), ("setwise-smollm2-135m", "heapsort")])
def test_pairwise_and_setwise_decisions_match_hf(smol_hf, smol_vllm, dl19, preset, method):
    rep = decision_parity(smol_hf, smol_vllm, dl19(2, 6), preset, method=method, k=3)
    assert rep["comparisons"] >= 10
    assert rep["identical_share"] >= 0.99, rep
    assert rep["rankings_identical"] == rep["queries"], rep
