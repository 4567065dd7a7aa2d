"""Length-sorted batching of the hf backend (pure function; no model needed)."""

from __future__ import annotations

import random

import pytest

from rerankkit.backends.hf import _max_padding, length_batches
from rerankkit.errors import ConfigError


def _check(lengths, batches, batch_size, max_tokens, max_padding):
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every sequence exactly once
    for b in batches:
        longest = max(lengths[i] for i in b)
        padded = longest * len(b)
        assert len(b) <= batch_size
        if len(b) > 1:
            assert padded <= max_tokens
            assert padded - sum(lengths[i] for i in b) <= max_padding * padded + 1e-9


def test_batches_respect_size_tokens_and_padding_share():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 500) for _ in range(rng.randint(0, 60))]
        size, tokens, pad = rng.randint(1, 20), rng.randint(50, 5000), rng.choice([0.0, 0.05, 0.1, 0.5, 1.0])
        _check(lengths, list(length_batches(lengths, size, tokens, pad)), size, tokens, pad)


def test_padding_cap_splits_mixed_lengths_and_keeps_equal_ones_together():
    lengths = [100, 100, 100, 100, 50, 50]
    assert [sorted(b) for b in length_batches(lengths, 16, 10_000, 1.0)] == [[0, 1, 2, 3, 4, 5]]
    assert [sorted(b) for b in length_batches(lengths, 16, 10_000, 0.05)] == [[0, 1, 2, 3], [4, 5]]
    assert [sorted(b) for b in length_batches(lengths, 16, 10_000, 0.0)] == [[0, 1, 2, 3], [4, 5]]
    assert list(length_batches([600], 16, 100, 0.0)) == [[0]]  # too long for the budget: still one batch


def test_max_padding_option():
    assert _max_padding("0.25") == 0.25 and _max_padding(1) == 1.0
    for bad in ("lots", 1.5, -0.1):
        with pytest.raises(ConfigError, match="max_padding"):
            _max_padding(bad)
