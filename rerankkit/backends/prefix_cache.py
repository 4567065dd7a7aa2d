"""Prefix reuse for causal scoring: keys/values of prompt tokens seen before, and packed forwards.

Pairwise and setwise prompts repeat long prefixes: both orders of a PRP pair start with the instruction
and the query, and the next comparison of a sort often starts with the same first passage as one of the
last. :class:`PrefixKV` keeps the attention keys/values of recently scored prompt tokens in a token trie
(position = depth, so a rotary key is reused at the very position it was computed for). :meth:`PrefixKV.pack`
lays out the tokens a group of prompts still needs as *one* sequence — a token shared by two prompts of the
group once — with an attention mask that lets each token see exactly the earlier tokens of its own prompt,
cached or new. One forward then gives every prompt's next-token logits as if it ran alone (up to the order of
floating-point sums), at the cost of its new tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROOT = -1


@dataclass
class Pack:
    """One packed forward: ``ids``/``positions`` of the new tokens, the cached tokens they read (``past``,
    pool slots), ``allowed[i, j]`` (new token i may attend to column j: the past first, then the new tokens),
    ``last[k]`` (the new-token index whose logits are prompt k's next-token distribution), and ``fresh``
    ((new-token index, trie node) pairs to store after the forward)."""

    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    past: list[int] = field(default_factory=list)
    allowed: Any = None
    last: list[int] = field(default_factory=list)
    fresh: list[tuple[int, int]] = field(default_factory=list)


class PrefixKV:
    """A token trie of computed keys/values, at most ``capacity`` tokens; the least recently used go first.

    ``pools[layer] = (keys, values)``, each ``[kv_heads, capacity, head_dim]``, allocated on the first store.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.children: dict[tuple[int, int], int] = {}
        self.key_of: dict[int, tuple[int, int]] = {}  # node -> its (parent, token) entry in ``children``
        self.slot: dict[int, int] = {}  # computed nodes only
        self.stamp: dict[int, int] = {}
        self.free: list[int] = list(range(self.capacity - 1, -1, -1))
        self.pools: list[tuple[Any, Any]] | None = None
        self.clock = 0
        self._next_node = 0
        self.computed = 0  # prompt tokens run through the model by packs
        self.reused = 0  # prompt tokens a pack took from the cache or from another prompt of the same pack

    def __len__(self) -> int:
        """Cached tokens."""
        return len(self.slot)

    def clear(self) -> None:
        self.children.clear()
        self.key_of.clear()
        self.slot.clear()
        self.stamp.clear()
        self.free = list(range(self.capacity - 1, -1, -1))

    # -- planning -------------------------------------------------------------------------------
    def _child(self, parent: int, token: int) -> int:
        node = self.children.get((parent, token))
        if node is None:
            node = self._next_node
            self._next_node += 1
            self.children[(parent, token)] = node
            self.key_of[node] = (parent, token)
        return node

    def new_tokens(self, seq: list[int]) -> int:
        """How many tokens of ``seq`` a pack would compute (its uncached suffix; at least its last token)."""
        node, cached = ROOT, 0
        for tok in seq:
            node = self.children.get((node, tok), -2)
            if node == -2 or node not in self.slot:
                break
            cached += 1
        return len(seq) - min(cached, len(seq) - 1)

    def pack(self, seqs: list[list[int]]) -> Pack:
        """The packed forward for ``seqs`` (each non-empty). Every prompt computes at least its last token,
        so a prompt seen before still gets its logits."""
        self.clock += 1
        p = Pack()
        new_index: dict[int, int] = {}  # node -> index among the new tokens
        past_col: dict[int, int] = {}  # cached node -> its column among the past
        walks: list[tuple[list[tuple[bool, int]], list[tuple[int, int]]]] = []  # per prompt: path, rows it adds
        for seq in seqs:
            node = ROOT
            path: list[tuple[bool, int]] = []  # (is_new, index) per token
            rows: list[tuple[int, int]] = []  # (position in path, new-token index) of the rows this prompt adds
            for t, tok in enumerate(seq):
                node = self._child(node, tok)
                self.stamp[node] = self.clock
                if node in self.slot and t < len(seq) - 1:
                    if node not in past_col:
                        past_col[node] = len(p.past)
                        p.past.append(self.slot[node])
                    path.append((False, past_col[node]))
                elif node in new_index:  # shared with an earlier prompt of this pack
                    path.append((True, new_index[node]))
                else:  # new, or a prompt seen whole whose last token is recomputed (not stored again)
                    idx = len(p.ids)
                    p.ids.append(tok)
                    p.positions.append(t)
                    if node not in self.slot:
                        new_index[node] = idx
                        p.fresh.append((idx, node))
                    path.append((True, idx))
                    rows.append((t, idx))
            p.last.append(path[-1][1])
            walks.append((path, rows))
        n, past = len(p.ids), len(p.past)
        self.computed += n
        self.reused += sum(len(seq) for seq in seqs) - n
        allowed = np.zeros((n, past + n), dtype=bool)
        for path, rows in walks:
            if not rows:
                continue
            cols = np.array([i if not new else past + i for new, i in path])
            upto = np.array([t for t, _ in rows])
            block = np.arange(len(cols))[None, :] <= upto[:, None]  # a token sees its prompt's tokens up to itself
            allowed[np.ix_([i for _, i in rows], cols)] |= block
        p.allowed = allowed
        return p

    # -- storing --------------------------------------------------------------------------------
    def store(self, pack: Pack, layers: list[tuple[Any, Any]], torch: Any) -> None:
        """Keep the keys/values of the pack's new tokens. ``layers[l] = (keys, values)``, each
        ``[1, kv_heads, past + new, head_dim]`` as the forward returned them."""
        fresh = [(i, node) for i, node in pack.fresh if node in self.key_of and node not in self.slot]
        self._make_room(len(fresh))
        # what fits (the current pack's own cached nodes stay): a head of ``fresh`` holds every parent it needs,
        # since a pack lists a prompt's new tokens in order and a shared one where it first appeared
        fresh = fresh[: len(self.free)]
        if not fresh:
            return
        if self.pools is None:
            self.pools = [(k.new_zeros((k.shape[1], self.capacity, k.shape[3])),
                           v.new_zeros((v.shape[1], self.capacity, v.shape[3]))) for k, v in layers]
        slots = [self.free.pop() for _ in fresh]
        src = torch.tensor([len(pack.past) + i for i, _ in fresh], device=layers[0][0].device)
        dst = torch.tensor(slots, device=layers[0][0].device)
        for (pk, pv), (k, v) in zip(self.pools, layers):
            pk[:, dst] = k[0].index_select(1, src)
            pv[:, dst] = v[0].index_select(1, src)
        for (_, node), s in zip(fresh, slots):
            self.slot[node] = s

    def past(self, pack: Pack, torch: Any) -> list[tuple[Any, Any]] | None:
        """The pack's cached keys/values per layer, ``[1, kv_heads, len(past), head_dim]``; None when none."""
        if not pack.past or self.pools is None:
            return None
        idx = torch.tensor(pack.past, device=self.pools[0][0].device)
        return [(k.index_select(1, idx)[None], v.index_select(1, idx)[None]) for k, v in self.pools]

    def _make_room(self, need: int) -> None:
        """Drop the least recently used nodes (a node is never used later than its parent, so whole subtrees
        go together) until ``need`` slots are free; the current pack's nodes stay."""
        if len(self.free) >= need:
            return
        by_stamp: dict[int, list[int]] = {}  # one pass over the nodes, oldest stamp dropped first
        for node, stamp in self.stamp.items():
            if stamp < self.clock:
                by_stamp.setdefault(stamp, []).append(node)
        for stamp in sorted(by_stamp):
            for node in by_stamp[stamp]:
                self._drop(node)
            if len(self.free) >= need:
                return

    def _drop(self, node: int) -> None:
        key = self.key_of.pop(node, None)
        if key is not None:
            self.children.pop(key, None)
        self.stamp.pop(node, None)
        s = self.slot.pop(node, None)
        if s is not None:
            self.free.append(s)


def pad_allowed(allowed: np.ndarray, filler: int) -> np.ndarray:
    """A pack's ``allowed`` matrix grown by ``filler`` trailing tokens that each see only themselves (no real
    token sees them): the filler that rounds a packed forward's length."""
    if not filler:
        return allowed
    n, cols = allowed.shape
    out = np.zeros((n + filler, cols + filler), dtype=bool)
    out[:n, :cols] = allowed
    out[np.arange(n, n + filler), np.arange(cols, cols + filler)] = True
    return out
