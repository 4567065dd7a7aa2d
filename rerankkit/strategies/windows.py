"""The sliding-window schedule of listwise reranking (RankGPT, RankZephyr, FIRST).

Windows of ``window`` documents move from the bottom of the candidate list to the top in steps of
``stride``, so a relevant document near the bottom can climb up to ``window - stride`` positions per
window and the best ones end at the top (Sun et al., "Is ChatGPT Good at Search?", EMNLP 2023).
"""

from __future__ import annotations

from ..errors import ConfigError


def check_window(window: int, stride: int) -> None:
    """Raise :class:`ConfigError` unless ``0 < stride < window``."""
    if window < 2:
        raise ConfigError(f"listwise window must hold at least 2 documents, got window={window}")
    if stride < 1:
        raise ConfigError(f"listwise stride must be at least 1, got stride={stride}")
    if stride >= window:
        raise ConfigError(
            f"listwise stride ({stride}) must be smaller than the window ({window}): with stride >= window "
            "the windows do not overlap and no document can move past its window; try stride=window//2"
        )


def window_schedule(n: int, window: int = 20, stride: int = 10) -> list[tuple[int, int]]:
    """The ``(start, end)`` index ranges, bottom window first, that rerank ``n`` candidates.

    The first window is the last ``window`` documents; each next one is ``stride`` higher; the top
    window is clamped to start at 0 and is the last. ``n <= window`` gives the single window
    ``(0, n)``. ``n=100, window=20, stride=10`` gives 9 windows: (80, 100), (70, 90), ..., (0, 20).
    """
    check_window(window, stride)
    if n <= 0:
        return []
    out: list[tuple[int, int]] = []
    start, end = n - window, n
    while True:
        lo = max(start, 0)
        out.append((lo, end))
        if lo == 0:
            return out
        start -= stride
        end -= stride
