"""The paired statistics against scipy where scipy has the same test, and by hand where it does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rerankkit.errors import InputError
from rerankkit.eval.significance import (
    betainc_regularized,
    compare,
    kendall_tau,
    paired_bootstrap,
    paired_t_test,
    ranking_tau,
    win_tie_loss,
)

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")


@pytest.mark.parametrize("n", [2, 3, 7, 43, 500])
def test_paired_t_test_equals_scipy(n):
    rng = np.random.default_rng(n)
    a = rng.random(n)
    b = np.clip(a + rng.normal(0.03, 0.1, n), 0, 1)
    t, p = paired_t_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert t == pytest.approx(ref.statistic, rel=1e-10)
    assert p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("a, b, x", [(0.5, 0.5, 0.3), (2.0, 3.0, 0.7), (21.0, 0.5, 0.999), (0.5, 0.5, 1e-7),
                                     (200.0, 0.5, 0.99), (3.0, 3.0, 0.5)])
def test_incomplete_beta_equals_scipy(a, b, x):
    assert betainc_regularized(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-12, abs=1e-300)


def test_kendall_tau_equals_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    for n in (2, 5, 20, 60):
        x, y = rng.permutation(n), rng.permutation(n)
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
        xt, yt = rng.integers(0, 4, n), rng.integers(0, 3, n)  # graded labels: many ties (tau-b)
        if len(set(xt)) > 1 and len(set(yt)) > 1:
            assert kendall_tau(xt, yt) == pytest.approx(stats.kendalltau(xt, yt).statistic)
    assert ranking_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0 and ranking_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(InputError):
        ranking_tau(["a", "b"], ["a", "c"])


def test_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(1)
    a = rng.random(43)
    b = a + rng.normal(0.08, 0.1, 43)
    lo, hi, p = paired_bootstrap(a, b, resamples=20000, seed=0)
    ref = stats.bootstrap((a, b), lambda x, y: np.mean(x - y), paired=True, vectorized=False, method="percentile",
                          n_resamples=20000, random_state=0).confidence_interval
    width = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.05 * width) and hi == pytest.approx(ref.high, abs=0.05 * width)
    # the bootstrap p-value and the t-test agree on a clear difference and on no difference
    assert p < 0.01 and paired_t_test(a, b)[1] < 0.01
    same = paired_bootstrap(a, a.copy(), resamples=500)
    assert same[2] == 1.0 and same[0] == same[1] == 0.0


def test_win_tie_loss_and_degenerate_cases():
    assert win_tie_loss([0.5, 0.2, 0.3, 0.3], [0.4, 0.2, 0.5, 0.3 + 1e-12]) == (1, 2, 1)
    assert paired_t_test([0.1, 0.2], [0.1, 0.2]) == (0.0, 1.0)  # no difference at all
    assert paired_t_test([0.3, 0.4], [0.1, 0.2]) == (math.inf, 0.0)  # one constant difference
    c = compare([0.5, 0.6, 0.7], [0.4, 0.6, 0.9], resamples=200)
    assert (c.wins, c.ties, c.losses, c.n) == (1, 1, 1, 3) and c.diff == pytest.approx(-1 / 30)
    with pytest.raises(InputError):
        compare([0.1], [0.1, 0.2])
    with pytest.raises(InputError):
        compare([], [])
