"""The prefix cache's token trie: what a pack computes, what each token may see, what is kept and dropped."""

from __future__ import annotations

import numpy as np
import pytest

from rerankkit.backends.prefix_cache import PrefixKV


def visible(pack, row):
    """Columns new token ``row`` may attend to, as ('past', slot) / ('new', token id) pairs."""
    out = []
    for col in np.flatnonzero(pack.allowed[row]):
        out.append(("past", pack.past[col]) if col < len(pack.past) else ("new", pack.ids[col - len(pack.past)]))
    return out


def test_a_prefix_shared_within_a_pack_is_computed_once():
    kv = PrefixKV(64)
    pack = kv.pack([[1, 2, 3, 4], [1, 2, 5]])
    assert pack.ids == [1, 2, 3, 4, 5]
    assert pack.positions == [0, 1, 2, 3, 2]  # a token keeps its position in its own prompt
    assert pack.past == []
    assert pack.last == [3, 4]
    assert visible(pack, 4) == [("new", 1), ("new", 2), ("new", 5)]  # not 3 or 4: the other prompt's tokens
    assert visible(pack, 3) == [("new", 1), ("new", 2), ("new", 3), ("new", 4)]
    assert (kv.computed, kv.reused) == (5, 2)


def fake_layers(pack, layers=2, heads=1, dim=2):
    """Keys/values as a forward returns them: [1, heads, past + new, dim], value = 100*layer + column."""
    torch = pytest.importorskip("torch")
    width = len(pack.past) + len(pack.ids)
    col = torch.arange(width, dtype=torch.float32)[None, None, :, None].expand(1, heads, width, dim)
    return [(col + 100 * li, -(col + 100 * li)) for li in range(layers)]


def kept(kv, *seqs):
    """Pack ``seqs``, store what the pack computed (fake keys/values), return the pack."""
    torch = pytest.importorskip("torch")
    pack = kv.pack(list(seqs))
    kv.store(pack, fake_layers(pack), torch)
    return pack


def test_cached_tokens_are_read_not_computed():
    torch = pytest.importorskip("torch")
    kv = PrefixKV(64)
    kept(kv, [1, 2, 3, 4])
    assert len(kv) == 4
    second = kv.pack([[1, 2, 3, 9], [1, 7]])
    assert second.ids == [9, 7] and second.positions == [3, 1]
    assert len(second.past) == 3  # tokens 1, 2, 3 of the first prompt
    assert second.last == [0, 1]
    past = kv.past(second, torch)
    assert len(past) == 2
    keys, values = past[1]
    assert keys.shape == (1, 1, 3, 2)
    assert keys[0, 0, :, 0].tolist() == [100.0, 101.0, 102.0]  # the first pack's columns 0-2 of layer 1
    assert values[0, 0, :, 0].tolist() == [-100.0, -101.0, -102.0]
    assert np.flatnonzero(second.allowed[0]).tolist() == [0, 1, 2, 3]  # 1, 2, 3 and itself
    assert np.flatnonzero(second.allowed[1]).tolist() == [0, 4]  # token 1, then itself; not 2 or 3


def test_a_prompt_seen_whole_recomputes_only_its_last_token():
    kv = PrefixKV(64)
    kept(kv, [1, 2, 3])
    again = kept(kv, [1, 2, 3], [1, 2, 3])
    assert again.ids == [3, 3] and again.positions == [2, 2]
    assert again.last == [0, 1]
    assert again.fresh == []  # already kept: not stored twice
    assert len(kv) == 3


def test_the_least_recently_used_go_first_and_whole():
    kv = PrefixKV(6)
    for seq in ([1, 2, 3], [4, 5]):
        kept(kv, seq)
    kept(kv, [1, 2, 8])  # uses 1 and 2 again: 3 is now the oldest, then [4, 5]
    assert len(kv) == 6
    kept(kv, [6, 7])  # needs 2 slots: 3 goes (1 slot, not enough), then [4, 5]
    assert len(kv) == 5
    assert kv.new_tokens([4, 5]) == 2
    assert kv.new_tokens([1, 2, 3, 0]) == 2
    assert kv.new_tokens([1, 2, 8, 0]) == 1
    assert kv.new_tokens([6, 7, 0]) == 1
    kept(kv, [9, 9, 9, 9, 9])  # 5 slots: everything older goes, no child outlives its parent
    assert len(kv) == 5
    assert kv.new_tokens([1, 2, 3]) == 3
    for node, (parent, _) in kv.key_of.items():
        assert parent == -1 or parent in kv.key_of, node


def test_a_pack_larger_than_the_cache_keeps_its_head():
    kv = PrefixKV(3)
    kept(kv, [1, 2, 3, 4])
    assert len(kv) == 3
    assert kv.new_tokens([1, 2, 3, 4, 5]) == 2  # 4 and 5
    kept(kv, [1, 2, 7, 8])  # 1 and 2 are read; 3 goes, 7 fits, 8 does not
    assert kv.new_tokens([1, 2, 7, 8, 9]) == 2
