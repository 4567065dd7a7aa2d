"""The one token-aware truncation helper every strategy uses for document text."""

from __future__ import annotations

from ..backends.base import Backend


class Truncator:
    """Cuts document texts to a token budget with the backend's tokenizer and counts the cuts.

    Results are memoised per (text, budget), so a document shown in many prompts is tokenised once.
    """

    def __init__(self, backend: Backend, max_tokens: int | None):
        self.backend = backend
        self.max_tokens = max_tokens
        self._memo: dict[tuple[str, int], str] = {}
        self.truncated: set[str] = set()  # texts that were cut at least once

    def __call__(self, text: str, max_tokens: int | None = None) -> str:
        budget = self.max_tokens if max_tokens is None else max_tokens
        if budget is None or not text:
            return text
        key = (text, budget)
        out = self._memo.get(key)
        if out is None:
            out = self.backend.truncate(text, budget)
            self._memo[key] = out
        if out != text:
            self.truncated.add(text)
        return out

    def note(self, text: str) -> None:
        """Record ``text`` as cut by another rule (e.g. a listwise word cap), so it is counted too."""
        self.truncated.add(text)

    def count(self, texts: list[str]) -> int:
        """How many of ``texts`` were truncated."""
        return sum(1 for t in set(texts) if t in self.truncated)


def cut_words(text: str, max_words: int | None) -> str:
    """The first ``max_words`` whitespace-separated words of ``text``, joined by single spaces (as
    ``" ".join(text.split()[:n])`` in the reference code that cuts by words); ``None``: unchanged."""
    return text if max_words is None else " ".join(text.split()[:max_words])
