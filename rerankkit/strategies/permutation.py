"""Identifiers of listed documents and the permutation parser for listwise model output.

The parser never loses or duplicates a document: it keeps the first mention of each known
identifier, drops unknown and repeated ones, and appends the identifiers the output never named in
their original order (the repair RankGPT's reference code applies). Every repair is counted.
Identifiers are wrapped as the template's ``item`` wraps them (``[3]`` by default, ``(3)`` in a
template that lists ``({id})``); the parser and the escaping read the same wrapper.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

NUMERIC = "numeric"
ALPHA = "alpha"
STYLES = (NUMERIC, ALPHA)

BRACKETS = ("[", "]")
_BARE_NUMERIC = re.compile(r"\d+")
_BARE_ALPHA = re.compile(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z])")
_ESCAPE_BODY = {NUMERIC: r"(\s*\d+\s*)", ALPHA: r"(\s*[A-Za-z]\s*)"}


@functools.cache
def _wrapped(wrapper: tuple[str, str]) -> re.Pattern[str]:
    o, c = (re.escape(x) for x in wrapper)
    return re.compile(o + r"([^" + o + c + r"]{0,12})" + c)


@functools.cache
def _escape_pattern(style: str, wrapper: tuple[str, str]) -> re.Pattern[str]:
    o, c = (re.escape(x) for x in wrapper)
    return re.compile(o + _ESCAPE_BODY[style] + c)


def identifiers(n: int, style: str = NUMERIC) -> list[str]:
    """The identifiers of ``n`` listed documents: ``1..n`` (numeric) or ``A..`` (alpha, at most 26)."""
    if style == NUMERIC:
        return [str(i + 1) for i in range(n)]
    if style == ALPHA:
        if n > 26:
            raise ConfigError(f"alphabetic identifiers name at most 26 documents, the window has {n}; "
                              "use window <= 26 (FIRST uses 20: [A]..[T])")
        return list(string.ascii_uppercase[:n])
    raise ConfigError(f"identifier style must be one of {STYLES}, not {style!r}")


def escape_identifiers(text: str, style: str = NUMERIC, wrapper: tuple[str, str] = BRACKETS) -> str:
    """Rewrite identifier-like ``[3]`` (or ``[B]``) inside a document as ``(3)`` so it cannot be
    mistaken for a listed document (rank_llm's ``_replace_number`` does the same). With another
    ``wrapper`` (``("(", ")")``), its identifiers become ``[3]``; bare identifiers cannot be escaped."""
    if not (wrapper[0] and wrapper[1]):
        return text
    other = r"(\1)" if wrapper == BRACKETS else r"[\1]"
    return _escape_pattern(style, wrapper).sub(other, text)


@dataclass(frozen=True)
class ParsedPermutation:
    """``order``: window positions, best first, a permutation of ``range(n)``; and the repairs made."""

    order: tuple[int, ...]
    unknown: int = 0  # identifier-shaped tokens that name no document of the window
    duplicate: int = 0  # repeated mentions of a document
    missing: int = 0  # documents never named, appended in their original order

    @property
    def repaired(self) -> bool:
        return bool(self.unknown or self.duplicate or self.missing)

    @property
    def failed(self) -> bool:
        """True when the output named no document at all (the window keeps its input order)."""
        return self.missing == len(self.order) and len(self.order) > 0


def _key(token: str) -> str:
    t = token.strip().upper()
    if t.isdigit() and len(t) <= 12:
        return str(int(t))  # "07" -> "7"
    return t


def parse_permutation(text: str, labels: Sequence[str], wrapper: tuple[str, str] = BRACKETS) -> ParsedPermutation:
    """Read a ranking such as ``"[3] > [1] > [2]"`` over ``labels`` (the window's identifiers).

    Tokens inside ``wrapper`` (``[...]`` by default) are read first; when the output has none, bare
    identifier-shaped tokens (numbers, or single letters for alphabetic labels) are read instead.
    Unicode look-alikes (full-width digits, circled numbers) are normalised first.
    """
    lookup = {_key(lbl): i for i, lbl in enumerate(labels)}
    if len(lookup) != len(labels):
        raise ValueError(f"identifiers must be distinct: {list(labels)}")
    text = unicodedata.normalize("NFKC", text or "")
    tokens = _wrapped(wrapper).findall(text) if wrapper[0] and wrapper[1] else []
    if not tokens:
        alpha = any(lbl.isalpha() for lbl in labels)
        tokens = (_BARE_ALPHA if alpha else _BARE_NUMERIC).findall(text)
    seen: set[int] = set()
    order: list[int] = []
    unknown = duplicate = 0
    for tok in tokens:
        i = lookup.get(_key(tok))
        if i is None:
            unknown += 1
        elif i in seen:
            duplicate += 1
        else:
            seen.add(i)
            order.append(i)
    missing = [i for i in range(len(labels)) if i not in seen]
    return ParsedPermutation(tuple(order + missing), unknown, duplicate, len(missing))
