"""The sliding-window schedule: counts, edge cases, coverage and the top-(window - stride) guarantee."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankkit.errors import ConfigError
from rerankkit.strategies.windows import window_schedule


def test_hundred_docs_window_20_stride_10_gives_nine_bottom_up_windows():
    sched = window_schedule(100, 20, 10)
    assert len(sched) == 9
    assert sched[0] == (80, 100)
    assert sched[-1] == (0, 20)
    assert sched == [(s, s + 20) for s in range(80, -1, -10)]


def test_fewer_docs_than_window_is_one_window():
    assert window_schedule(15, 20, 10) == [(0, 15)]
    assert window_schedule(20, 20, 10) == [(0, 20)]
    assert window_schedule(1, 20, 10) == [(0, 1)]
    assert window_schedule(0, 20, 10) == []


def test_depth_not_a_multiple_of_stride_clamps_the_top_window():
    assert window_schedule(25, 20, 10) == [(5, 25), (0, 15)]
    assert window_schedule(35, 20, 10) == [(15, 35), (5, 25), (0, 15)]
    assert window_schedule(7, 4, 3) == [(3, 7), (0, 4)]


@pytest.mark.parametrize("window,stride", [(20, 20), (20, 25), (10, 0), (1, 1), (5, -1)])
def test_bad_window_or_stride_is_rejected(window, stride):
    with pytest.raises(ConfigError):
        window_schedule(100, window, stride)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 300), window=st.integers(2, 40), data=st.data())
def test_schedule_covers_every_position_and_carries_the_best_to_the_top(n, window, data):
    stride = data.draw(st.integers(1, window - 1))
    sched = window_schedule(n, window, stride)
    assert sched[0][1] == n and sched[-1][0] == 0
    assert all(0 <= lo < hi <= n and hi - lo <= window for lo, hi in sched)
    assert all(a[0] > b[0] for a, b in zip(sched, sched[1:]))  # bottom up
    assert set().union(*(range(lo, hi) for lo, hi in sched)) == set(range(n))
    # with a perfect window sorter, the top (window - stride) documents end correct and in order
    values = data.draw(st.permutations(list(range(n))))
    order = list(values)
    for lo, hi in sched:
        order[lo:hi] = sorted(order[lo:hi], reverse=True)
    keep = min(window - stride, n)
    assert order[:keep] == sorted(values, reverse=True)[:keep]
