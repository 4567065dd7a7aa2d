"""Reading per-document scores out of a model's JSON reply (GroupRank and other groupwise prompts).

Two readers, neither of which raises:

- :func:`read_reference_scores` reads a reply as GroupRank's official inference code does
  (AQ-MedAI/Diver ``Reranker/rerank_groupwise.py``): the ``<answer>`` section if there is one, its last
  fenced ``json`` block (else its last ``{...}``), two repairs (``"[7]]"`` -> ``"[7]"``, one missing
  closing brace), then strict JSON whose every key is a label ``[k]`` of the group and every value a
  number, kept as given. Anything else makes the whole reply unreadable.
- :func:`parse_group_scores` salvages what it can: prose, reasoning, tags or code fences around the
  JSON, a reply cut off mid-object, keys like ``"3"``, ``"Doc 3"``, nested objects, lists of items;
  labels outside the group are skipped and values clamped to the scale, all counted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
# No two neighbouring parts of these patterns can match the same character, so a reply of long runs
# of spaces or brackets is read in linear time (overlapping ``\s*`` parts made it O(n^4): minutes).
_LABEL = re.compile(r"^[\s\[]*(?:(?:doc(?:ument)?|passage|d|p|id)[\s_#:-]*|[_#:-][\s_#:-]*)?(\d{1,6})[\s\]]*$",
                    re.IGNORECASE)
# "key": value pairs inside a (possibly broken or truncated) object, for when json.loads fails; the
# label is the number right before the colon (whatever names it: "[3]", 'Doc 3', 3)
_PAIR = re.compile(r"""(?<![\d.])(\d{1,6})[\s\]]*(?:["'][\s\]]*)?:\s*(?:["']\s*)?(-?\d+(?:\.\d+)?)""")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
_ID_KEYS = ("id", "doc", "docid", "doc_id", "document", "passage", "index", "label")
_SCORE_KEYS = ("score", "relevance", "value", "rating", "usefulness")


@dataclass(frozen=True)
class GroupScores:
    """What one reply said about a group of ``n`` documents labelled ``1..n``."""

    n: int
    scores: dict[int, float] = field(default_factory=dict)  # label -> score (on [low, high] when lenient)
    extra_keys: int = 0  # labels outside 1..n that the reply scored anyway
    clamped: int = 0  # values outside [low, high], clamped to the scale
    source: str = "none"  # "json", "repaired" (regex over a broken object) or "none"
    readable: bool | None = None  # the reply could be read (None: when it scored a document)

    @property
    def parsed(self) -> bool:
        """True when the reply could be read: for the lenient reader, when it scored a document of the group."""
        return bool(self.scores) if self.readable is None else self.readable

    @property
    def missing(self) -> list[int]:
        """Labels of the group the reply gave no score."""
        return [k for k in range(1, self.n + 1) if k not in self.scores]


_FENCED_JSON = re.compile(r"```json\s*([\s\S]+?)\s*```")
_FLAT_OBJECT = re.compile(r"\{[^}]*\}")  # from a "{" to the first "}" after it
_DOUBLED_BRACKET = re.compile(r"(\[\d+\])\]")


def read_reference_scores(reply: str | None, n: int) -> GroupScores:
    """Scores for labels ``1..n`` read as GroupRank's official code reads them; unreadable: ``parsed`` False.

    A readable reply may score only some labels (the others get no score from it) or none (``{}``).
    Values are kept as given (no clamping); a label outside ``1..n``, a key that is not a bracketed
    integer, or a value that is not a finite number makes the whole reply unreadable, as an exception
    does in the reference. (Two differences, both on replies no model should give: the reference maps
    a label ``[0]`` or below to a document counted from the group's end through Python's negative
    indexing, and keeps a NaN score; here both make the reply unreadable.)
    """
    text = reply if isinstance(reply, str) else ""
    # Each pattern below can only match up to its closing token, so it searches the text only up to
    # the last one: an unclosed "```json" before a long run of spaces otherwise backtracked for
    # minutes (O(n^3)), and unclosed "{" or "<answer>" runs cost O(n^2). The matches are the same.
    answer = re.search(r"<answer>(.*?)</answer>", text[: _through_last(text, "</answer>")], re.DOTALL)
    if answer:
        text = answer.group(1).strip()
    fenced = _FENCED_JSON.findall(text[: _through_last(text, "```")])
    if fenced:
        body = fenced[-1].strip()
    else:
        flat = _FLAT_OBJECT.findall(text[: _through_last(text, "}")])
        if not flat:
            return GroupScores(n, readable=False)
        body = flat[-1].strip()
    body = _DOUBLED_BRACKET.sub(r"\1", body)
    if body.count("{") > body.count("}"):
        body += "}"
    body = " ".join(body.split())
    try:
        value = json.loads(body)
        pairs = list(dict(value).items())
    except (ValueError, TypeError, RecursionError):  # RecursionError: thousands of nested brackets
        return GroupScores(n, readable=False)
    scores: dict[int, float] = {}
    for key, raw in pairs:
        if not isinstance(raw, (int, float)):  # bool is an int, as in Python arithmetic
            return GroupScores(n, readable=False)
        try:
            label = int(str(key).strip().strip("[]"))
        except ValueError:
            return GroupScores(n, readable=False)
        number = float(raw)
        if not 1 <= label <= n or not math.isfinite(number):
            return GroupScores(n, readable=False)
        scores[label] = number
    return GroupScores(n, scores, source="json", readable=True)


def _through_last(text: str, token: str) -> int:
    """The end of the last ``token`` in ``text`` (0 when there is none)."""
    i = text.rfind(token)
    return i + len(token) if i >= 0 else 0


def parse_group_scores(reply: str | None, n: int, low: float = 0.0, high: float = 10.0) -> GroupScores:
    """Scores for labels ``1..n`` from ``reply``; the last JSON object that scores the group wins."""
    text = reply if isinstance(reply, str) else ""
    regions = [m.group(1) for m in _ANSWER.finditer(text)][::-1] + [text]
    for region in regions:
        for start, end in reversed(list(_object_spans(region))):
            found = _read_object(region[start:end])
            if found is None:
                continue
            pairs, source = found
            result = _collect(pairs, n, low, high, source)
            if result.parsed:
                return result
    return GroupScores(n)


def _object_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each top-level ``{...}`` in ``text``; an unclosed one runs to the end."""
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for pos, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = pos
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield start, pos + 1
    if depth > 0 and start >= 0:
        yield start, len(text)


def _read_object(chunk: str) -> tuple[list[tuple[str, Any]], str] | None:
    """(key, value) pairs from one object: strict JSON first, then a lenient scan of ``"k": number``."""
    try:
        value = json.loads(chunk)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        # a number that runs to the very end of a cut-off reply may itself be cut ("10" -> "1"): skip it
        pairs = [(m.group(1), m.group(2)) for m in _PAIR.finditer(chunk) if m.end() < len(chunk.rstrip())]
        return (pairs, "repaired") if pairs else None
    pairs = list(_walk(value))
    return (pairs, "json") if pairs else None


def _walk(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Label/score pairs anywhere in a decoded JSON value (nested objects, lists of items)."""
    if depth > 8:
        return
    if isinstance(value, dict):
        item = _as_item(value)
        if item is not None:
            yield item
            return
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)
            else:
                yield str(k), v
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)


def _as_item(obj: dict[str, Any]) -> tuple[str, Any] | None:
    """``{"id": "[2]", "score": 7}`` style objects: one labelled score."""
    keys = {str(k).lower(): k for k in obj}
    ident = next((obj[keys[k]] for k in _ID_KEYS if k in keys), None)
    score = next((obj[keys[k]] for k in _SCORE_KEYS if k in keys), None)
    if ident is None or score is None or isinstance(ident, (dict, list)):
        return None
    return str(ident), score


def _collect(pairs: list[tuple[str, Any]], n: int, low: float, high: float, source: str) -> GroupScores:
    scores: dict[int, float] = {}
    extra = clamped = 0
    for key, raw in pairs:
        m = _LABEL.match(key)
        value = _number(raw)
        if m is None or value is None:
            continue
        label = int(m.group(1))
        if not 1 <= label <= n:
            extra += 1
            continue
        if value < low or value > high:
            clamped += 1
            value = min(high, max(low, value))
        scores[label] = value  # a repeated key: the last one counts, as in JSON
    return GroupScores(n, scores, extra, clamped, source if scores else "none")


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        m = _NUMBER.match(raw)
        if m is None:
            return None
        value = float(m.group(1))
    else:
        return None
    return value if math.isfinite(value) else None
