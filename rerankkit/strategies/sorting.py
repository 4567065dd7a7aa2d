"""Sorting algorithms as plain generators over a "which is best?" comparator.

An algorithm sorts the items ``0..n-1`` (their input order is the initial ranking) and never sees
a model: it *yields* a list of groups (tuples of item indices) whose best member it needs to
know, and receives one winner per group (an item of that group, or ``None`` for "no decision").
It returns the final order, best first. Undecided questions fall back on the input order in
heapsort (the item ranked higher in the input wins) and keep the current arrangement in bubble
passes (no swap), so a comparator that never decides returns the input order.

Everything that is independent is asked in the same yield: the sift-downs of one heap level
(disjoint subtrees) and the windows of consecutive bubble passes that no longer overlap. The
comparisons made, and so the result, are exactly those of the textbook sequential algorithm;
only the number of rounds shrinks. ``parallel=False`` asks one group per round instead.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

Group = tuple[int, ...]
Winner = int | None
Tie = Callable[[Group], int]
Best = Callable[[Group, Tie], Generator[list[Group], list[Winner], int]]


def first(group: Group) -> int:
    """Tie rule of bubble passes: the item on top keeps its place."""
    return group[0]


def set_best(group: Group, tie: Tie = first) -> Generator[list[Group], list[Winner], int]:
    """Ask for the best of ``group`` in one question (setwise)."""
    (winner,) = yield [group]
    return tie(group) if winner is None else winner


def pair_best(group: Group, tie: Tie = first) -> Generator[list[Group], list[Winner], int]:
    """The best of ``group`` by pairwise comparisons, current best against the next."""
    best = group[0]
    for other in group[1:]:
        (winner,) = yield [(best, other)]
        best = tie((best, other)) if winner is None else winner
    return best


def run_parallel(gens: Sequence[Generator[list[Group], list[Winner], object]]) -> Generator[
        list[Group], list[Winner], list[object]]:
    """Advance independent sub-algorithms together: one round carries every pending group."""
    results: list[object] = [None] * len(gens)
    pending: dict[int, list[Group]] = {}
    for i, g in enumerate(gens):
        _step(i, g, None, pending, results)
    while pending:
        order = list(pending)
        batch = [grp for i in order for grp in pending[i]]
        answers = yield batch
        current, pending = pending, {}
        pos = 0
        for i in order:
            n = len(current[i])
            _step(i, gens[i], list(answers[pos : pos + n]), pending, results)
            pos += n
    return results


def _step(i: int, gen: Generator, send: list[Winner] | None, pending: dict[int, list[Group]],
          results: list[object]) -> None:
    try:
        asked = gen.send(send) if send is not None else next(gen)
        while not asked:
            asked = gen.send([])
        pending[i] = list(asked)
    except StopIteration as stop:
        results[i] = stop.value


def _sequential(gens: Sequence[Generator]) -> Generator[list[Group], list[Winner], list[object]]:
    out = []
    for g in gens:
        out.append((yield from g))
    return out


def heapsort(n: int, k: int, arity: int, best: Best, parallel: bool = True) -> Generator[
        list[Group], list[Winner], list[int]]:
    """Top-``k`` by a max-heap with ``arity`` children per node; stops once the top-``k`` is fixed.

    Each sift-down step asks ``best((node, *children))``. The order returned is the ``k`` best
    (sorted) followed by the remaining items in their input order.
    """
    if arity < 2:
        raise ValueError("heap arity must be at least 2")
    k = max(0, min(k, n))
    if k == 0:
        return list(range(n))
    heap = list(range(n))

    def sift(pos: int, size: int) -> Generator[list[Group], list[Winner], None]:
        while True:
            kids = range(arity * pos + 1, min(arity * pos + arity + 1, size))
            if not kids:
                return
            winner = yield from best((heap[pos], *(heap[c] for c in kids)), min)
            if winner == heap[pos]:
                return
            child = next(c for c in kids if heap[c] == winner)
            heap[pos], heap[child] = heap[child], heap[pos]
            pos = child

    # heapify: deepest internal level first; nodes of one level own disjoint subtrees
    internal = (n - 2) // arity + 1 if n > 1 else 0
    depth = [0] * internal
    for p in range(1, internal):
        depth[p] = depth[(p - 1) // arity] + 1
    for d in range(max(depth, default=-1), -1, -1):
        level = [p for p in range(internal - 1, -1, -1) if depth[p] == d]
        sifts = [sift(p, n) for p in level]
        yield from (run_parallel(sifts) if parallel else _sequential(sifts))
    top: list[int] = []
    size = n
    while len(top) < k:
        top.append(heap[0])
        size -= 1
        if len(top) == k:
            break
        heap[0] = heap[size]
        yield from sift(0, size)
    chosen = set(top)
    return top + [i for i in range(n) if i not in chosen]


def bubble_passes(n: int, passes: int, width: int, best: Best, parallel: bool = True) -> Generator[
        list[Group], list[Winner], list[int]]:
    """``passes`` bubble passes from the bottom of the list with a window of ``width`` items.

    Each window moves its best item to the window's top (a swap); the window then moves up by
    ``width - 1``. After pass ``p`` position ``p`` is fixed. With ``width=2`` this is PRP-Sliding-K.
    With ``parallel``, pass ``p+1`` starts on a window once pass ``p`` has finished with every
    position of it, so the comparisons (and the result) equal the sequential passes.
    """
    if width < 2:
        raise ValueError("window width must be at least 2")
    order = list(range(n))
    passes = max(0, min(passes, n - 1))
    step = width - 1
    plans: list[list[int]] = []
    for p in range(passes):
        starts = list(range(n - width, p, -step)) if n - width > p else []
        plans.append([*starts, p])
    nxt = [0] * passes  # index of each pass's next window

    def window(s: int) -> Group:
        return tuple(order[s : min(s + width, n)])

    def ready(p: int) -> bool:
        if nxt[p] >= len(plans[p]):
            return False
        if p == 0:
            return True
        if nxt[p - 1] >= len(plans[p - 1]):
            return True
        # every window of pass p-1 still to come must lie strictly above this one
        s = plans[p][nxt[p]]
        return plans[p - 1][nxt[p - 1]] + width <= s

    while any(nxt[p] < len(plans[p]) for p in range(passes)):
        if parallel:
            # decide the whole round from the state before it: a pass may not start a window that
            # its predecessor works on in the same round
            go = [p for p in range(passes) if ready(p)]
        else:
            go = [next(p for p in range(passes) if nxt[p] < len(plans[p]))]
        starts = [plans[p][nxt[p]] for p in go]
        groups = [window(s) for s in starts]
        winners = yield from run_parallel([best(g, first) for g in groups])
        for s, g, w in zip(starts, groups, winners):
            j = s + g.index(w)  # type: ignore[arg-type]
            order[s], order[j] = order[j], order[s]
        for p in go:
            nxt[p] += 1
    return order
