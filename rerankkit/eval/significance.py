"""Paired comparisons over queries: win/tie/loss, the paired t-test, the paired bootstrap, Kendall's tau.

Two systems are compared on the same queries (``a[i]`` and ``b[i]`` are one query's scores). The paired
t-test and the paired bootstrap are the tests Smucker, Allan and Carterette ("A Comparison of Statistical
Significance Tests for Information Retrieval Evaluation", CIKM 2007) found to agree for IR metrics; the
bootstrap here resamples queries and reports a percentile confidence interval of the mean difference and the
two-sided p-value of the shifted (null) bootstrap distribution (Efron & Tibshirani 1993, Sec. 16.4). Plain
numpy, no scipy (the tests check these against scipy where it has the same test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InputError

TIE = 1e-9  # |difference| at or below this is a tie


@dataclass(frozen=True)
class PairedComparison:
    """``a`` against ``b`` over ``n`` queries: mean difference (a - b), wins/ties/losses of ``a``, the paired
    t-test (``t``, ``p_t``) and the paired bootstrap (95 % interval ``ci_low``..``ci_high``, ``p_boot``)."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    wins: int
    ties: int
    losses: int
    t: float
    p_t: float
    ci_low: float
    ci_high: float
    p_boot: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"paired scores need two lists of the same length, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise InputError("paired scores need at least one query")
    return x, y


def win_tie_loss(a: Sequence[float], b: Sequence[float], tie: float = TIE) -> tuple[int, int, int]:
    """Queries where ``a`` scores higher than ``b``, within ``tie`` of it, and lower."""
    x, y = _pair(a, b)
    d = x - y
    return int(np.sum(d > tie)), int(np.sum(np.abs(d) <= tie)), int(np.sum(d < -tie))


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of the paired t-test of mean(a - b) = 0 (``scipy.stats.ttest_rel``).

    No variation at all gives (0, 1) when the differences are all zero and (±inf, 0) when they are one
    non-zero constant (scipy returns NaN for both)."""
    x, y = _pair(a, b)
    d = x - y
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if sd <= 1e-12 * abs(mean) or not math.isfinite(sd):  # no variation beyond rounding
        if abs(mean) <= TIE:
            return 0.0, 1.0
        return math.copysign(math.inf, mean), 0.0
    t = mean / (sd / math.sqrt(n))
    df = n - 1
    p = betainc_regularized(df / 2.0, 0.5, df / (df + t * t))
    return t, min(1.0, max(0.0, p))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """(interval low, interval high, two-sided p) for mean(a - b), resampling queries with replacement.

    The interval is the percentile interval of the resampled means (``scipy.stats.bootstrap`` with
    ``method="percentile"``, ``paired=True``); p is the share of resampled means of the differences shifted
    to mean 0 that lie at least as far from 0 as the observed mean ((count + 1) / (resamples + 1))."""
    x, y = _pair(a, b)
    d = x - y
    if resamples < 1:
        raise InputError(f"resamples must be at least 1, not {resamples}")
    rng = np.random.default_rng(seed)
    n = d.size
    means = np.empty(resamples, dtype=np.float64)
    step = max(1, 2_000_000 // max(n, 1))  # resamples per block: bounded memory for many queries
    for s in range(0, resamples, step):
        m = min(step, resamples - s)
        means[s : s + m] = d[rng.integers(0, n, size=(m, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    observed = float(d.mean())
    centred = means - observed
    extreme = int(np.sum(np.abs(centred) >= abs(observed) - 1e-15))
    return float(lo), float(hi), (extreme + 1) / (resamples + 1)


def compare(a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 0,
            tie: float = TIE) -> PairedComparison:
    """Every paired statistic of ``a`` against ``b`` (one score per query, in the same query order)."""
    x, y = _pair(a, b)
    w, t_, lo = win_tie_loss(x, y, tie)
    t, p_t = paired_t_test(x, y)
    c_lo, c_hi, p_b = paired_bootstrap(x, y, resamples, seed)
    return PairedComparison(int(x.size), float(x.mean()), float(y.mean()), float((x - y).mean()), w, t_, lo,
                            float(t), float(p_t), c_lo, c_hi, float(p_b), resamples)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two paired lists (``scipy.stats.kendalltau``'s default); NaN when either is
    constant."""
    a, b = _pair(x, y)
    n = a.size
    if n < 2:
        return math.nan
    i, j = np.triu_indices(n, k=1)
    da = np.sign(a[i] - a[j])
    db = np.sign(b[i] - b[j])
    concordant_minus_discordant = float(np.sum(da * db))
    ties_a = float(np.sum(da == 0))
    ties_b = float(np.sum(db == 0))
    pairs = float(i.size)
    denom = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return concordant_minus_discordant / denom if denom > 0 else math.nan


def ranking_tau(first: Sequence[str], second: Sequence[str]) -> float:
    """Kendall's tau between two orderings of the same items (1: identical, -1: reversed)."""
    if sorted(first) != sorted(second):
        raise InputError("the two rankings must order the same items")
    pos = {item: k for k, item in enumerate(second)}
    return kendall_tau(list(range(len(first))), [pos[item] for item in first])


def betainc_regularized(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (continued fraction, modified Lentz method)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15

    def guard(v: float) -> float:
        return tiny if abs(v) < tiny else v

    c = 1.0
    d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        num = m * (b - m) * x / ((a - 1.0 + m2) * (a + m2))  # even step
        d = 1.0 / guard(1.0 + num * d)
        c = guard(1.0 + num / c)
        h *= d * c
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1.0 + m2))  # odd step
        d = 1.0 / guard(1.0 + num * d)
        c = guard(1.0 + num / c)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


__all__ = ["PairedComparison", "betainc_regularized", "compare", "kendall_tau", "paired_bootstrap",
           "paired_t_test", "ranking_tau", "win_tie_loss"]
