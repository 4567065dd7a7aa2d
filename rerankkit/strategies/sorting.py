"""Sorting algorithms as plain generators over a "which is best?" comparator.

An algorithm sorts the items ``0..n-1`` (their input order is the initial ranking) and never sees
a model: it *yields* a list of groups (tuples of item indices) whose best member it needs to
know, and receives one winner per group (an item of that group, or ``None`` for "no decision").
It returns the final order, best first. An undecided question goes to the *incumbent* (the item
shown first: a heap's parent, the best so far) in heapsort, or with ``tie=input_order`` to the item
ranked higher in the input (then a comparator that never decides gives back the input order); in
bubble passes it keeps the current arrangement (no swap) either way.

Everything that is independent is asked in the same yield: the sift-downs of one heap level
(disjoint subtrees) and the windows of consecutive bubble passes that no longer overlap. The
comparisons made, and so the result, are exactly those of the sequential algorithm; only the
number of rounds shrinks. ``parallel=False`` asks one group per round instead.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

Group = tuple[int, ...]
Winner = int | None
Tie = Callable[[Group], int]
Best = Callable[[Group, Tie], Generator[list[Group], list[Winner], int]]


def first(group: Group) -> int:
    """Tie rule "incumbent": the item shown first (a heap's parent, the best so far) stays."""
    return group[0]


def input_order(group: Group) -> int:
    """Tie rule "input_order": the item ranked higher in the input wins."""
    return min(group)


TIE_RULES: dict[str, Tie] = {"incumbent": first, "input_order": input_order}


def keep_top(order: Sequence[int], k: int) -> list[int]:
    """The first ``k`` of ``order``, then every other item in its input order (the reference's output)."""
    top = list(order[: max(0, k)])
    chosen = set(top)
    return top + [i for i in range(len(order)) if i not in chosen]


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


def heapsort(n: int, k: int, arity: int, best: Best, parallel: bool = True, tie: Tie = first) -> Generator[
        list[Group], list[Winner], list[int]]:
    """Top-``k`` by a max-heap with ``arity`` children per node; stops once the top-``k`` is fixed.

    Each sift-down step asks ``best((node, *children), tie)``; ``tie`` settles undecided questions
    (:data:`TIE_RULES`). The order returned is the ``k`` best (sorted) followed by the remaining
    items in their input order.
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
            winner = yield from best((heap[pos], *(heap[c] for c in kids)), tie)
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

    Each window moves its best item to the window's top; the window then moves up by ``width - 1``.
    Pass ``p`` ends with a window clipped to start at position ``p``, so after pass ``p`` position
    ``p`` holds the best of positions ``p..n-1``. As in the Setwise reference code (ielab/llm-rankers),
    a pass starts where the previous one first changed something: the windows below held their best
    on top and are unchanged, so asking them again would repeat a question. (Where the previous pass
    first changed its clipped top window, the next one starts from that change, off the regular window
    grid, as the reference does.) A window of fewer than two items is not asked. With ``width=2`` this
    is PRP-Sliding-K (the reference's PRP bubblesort). With ``parallel``, pass ``p+1`` works on a
    window as soon as pass ``p`` has left it for good, so the questions (and the result) equal the
    sequential passes'. Returns the whole arrangement after the passes.
    """
    if width < 2:
        raise ValueError("window width must be at least 2")
    order = list(range(n))
    passes = max(0, min(passes, n - 1))
    runs: list[_Pass] = [_Pass(0, n - width, width)] if passes else []
    while any(not r.done for r in runs):
        go: list[_Pass] = []
        for j, r in enumerate(runs):
            if r.done:
                continue
            if go and not parallel:
                break
            ahead = runs[j - 1] if j else None  # the previous pass must have left this window for good
            if ahead is not None and not ahead.done and ahead.window()[1] > r.window()[0]:
                continue
            go.append(r)
        groups = [tuple(order[slice(*r.window())]) for r in go]
        asked = [g for g in groups if len(g) >= 2]
        winners = iter((yield from run_parallel([best(g, first) for g in asked])))
        for r, g in zip(go, groups):
            top = r.window()[0]
            pick = g.index(next(winners)) if len(g) >= 2 else 0  # type: ignore[arg-type]
            if pick:
                order[top], order[top + pick] = order[top + pick], order[top]
            start = r.advance(pick, len(g), n - width)
            if start is not None and r.index + 1 < passes:
                runs.append(_Pass(r.index + 1, start, width))
    return order


class _Pass:
    """One bubble pass's windows, the Setwise reference's way (see :func:`bubble_passes`)."""

    def __init__(self, index: int, start: int, width: int):
        self.index = index
        self.start = start  # the window's start before clipping at ``index``
        self.width = width
        self.next_start = start  # where the next pass starts, while not yet decided
        self.changed = False
        self.handed_on = False
        self.done = False

    def window(self) -> tuple[int, int]:
        """[start, end) of the current window."""
        return max(self.start, self.index), self.start + self.width

    def advance(self, pick: int, size: int, bottom: int) -> int | None:
        """Record the current window's outcome (``pick``: its winner's offset); move up. Returns the next
        pass's start once it is known (at this pass's first change, or at its end), else None."""
        step = self.width - 1
        top = self.window()[0]
        handed: int | None = None
        if pick and not self.changed:
            self.changed = True
            if self.next_start != bottom and pick == size - 1:  # the window below lost its top: redo it
                self.next_start += size - 1
            handed = self.next_start
        if top == self.index:
            self.done = True
            if not self.handed_on and handed is None:
                handed = self.next_start
        else:
            if not self.changed:
                self.next_start -= step
            self.start -= step
        if handed is not None:
            self.handed_on = True
        return handed
