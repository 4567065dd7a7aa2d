"""Where a template's formatting lives, and how to rewrite it without changing what it asks.

After Sclar et al., "Quantifying Language Models' Sensitivity to Spurious Features in Prompt Design or: How I
learned to start worrying about prompt formatting" (ICLR 2024, arXiv:2310.11324, Sec. 2), a prompt is read as
*fields* — a descriptor, a separator and a value (``Query: {query}``) — joined by *spacing*, with *enumerated*
items (``[1] doc``) and *answer labels*. This module finds those elements in any template's text (it knows no
template by name, so it follows their wording as it changes) and rewrites them consistently:

- **fields**: at the start of a line (or right after a placeholder), 1-3 words, an optional comparison label
  (``Passage A``, ``Passage {label}``), then ``:`` (or `` - ``), then a placeholder — or nothing at the very end
  of a part (an answer slot such as ``Output:``);
- **label mentions**: a labelled descriptor followed by a label anywhere (``Output Passage A or Passage B``, the
  ``answer`` part ``Passage {label}``), so the answers a comparison strategy scores follow the prompt;
- **item enumerators**: the identifier an ``item`` part starts with (``[{id}]``); where other parts refer to
  that wrapping (``[] > []``, ``e.g. [2] > [1]``, an assistant prefix ``[``), those references follow;
- **answer words**: a choice word quoted in the prompt (``'Yes'``, ``"Highly Relevant"``); the choices gain the
  restyled variants, so the scored answers match what the prompt names.

Everything else — the instructions' wording, the placeholders, the order of parts — is left as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from .template import Template

_PH = r"\{[A-Za-z_][A-Za-z0-9_]*\}"
_FIELD = re.compile(
    r"(?:\A|(?<=\n)|(?<=\x1f)|(?<=\} )|(?<=\}\" ))"  # a line start, a segment mark, or right after a value
    r"(?P<tag><)?(?P<desc>[A-Za-z][a-z]+(?: [A-Za-z][a-z]+){0,2})(?(tag)>)"  # "Query" or "<Query>"
    r"(?: (?P<lopen>[\[(]?)(?P<lab>[A-Z]|\{label\})(?P<lclose>[\])]?))?"
    r"(?P<sep>:[ \t]*\n|: ?| - )"
    rf"(?=\"?\x1f?{_PH}|\s*\Z)"  # a placeholder value follows, or nothing: an answer slot ending the part
)
_JOIN = re.compile(rf"(?s)\A(?P<value>\"?\x1f?{_PH}\x1f?\"?\.?)(?P<gap>[ \t\n]+)(?P<mark>\x1f?)\Z")
_ITEM_ID = re.compile(r"\A(?P<open>[\[(<]?)\{id\}(?P<close>[\])>]?)(?P<dot>\.?)(?P<space>[ \t]*)")
_ANSWER_LABEL = re.compile(r"(?P<desc>[A-Za-z][a-z]+) [\[(]?\{label\}[\])]?")
_PAIRS = {"": "", "[": "]", "(": ")", "<": ">"}

CASINGS: Mapping[str, Callable[[str], str]] = {"title": str.title, "upper": str.upper, "lower": str.lower}
SEPARATORS: Mapping[str, str] = {"colon": ": ", "dash": " - ", "newline": "\n", "colon-newline": ":\n"}
SPACINGS: Mapping[str, str] = {"newline": "\n", "blank-line": "\n\n", "space": " "}
#: how a listed document's identifier is written at the start of its item
ID_STYLES: Mapping[str, tuple[str, str]] = {"brackets": ("[", "]"), "parens": ("(", ")"), "dot": ("", "."),
                                            "descriptor": ("", ":")}
#: how a comparison label is written after its descriptor (Passage A / Passage [A] / Passage (A))
LABEL_STYLES: Mapping[str, tuple[str, str]] = {"plain": ("", ""), "brackets": ("[", "]"), "parens": ("(", ")")}
BRACKETED = ("brackets", "parens")  # the id styles a reference such as "[] > []" can follow


@dataclass(frozen=True)
class Structure:
    """What :func:`analyse` found in a template (positions are per part, in the original text)."""

    fields: Mapping[str, tuple[re.Match[str], ...]]
    labelled: frozenset[str]  # descriptors written before a comparison label
    item_id: tuple[str, str] | None  # (open, close) around {id} at the start of the item part
    id_referenced: bool  # other parts (or the prefix) refer to the identifiers' wrapping
    answer_words: Mapping[str, str]  # choice label -> its word, for choices the prompt quotes
    item_joiner: str  # "extra" (extra.item_separator), "trailing" (the item's trailing whitespace) or ""
    noun: str  # "Passage" or "Document": the word a descriptor-style enumerator uses


def analyse(t: Template) -> Structure:
    """Find the formatting elements of ``t``."""
    fields = {name: tuple(_FIELD.finditer(text)) for name, text in t.parts.items()}
    labelled = {m.group("desc") for ms in fields.values() for m in ms if m.group("lab")}
    labelled |= {m.group("desc") for m in _ANSWER_LABEL.finditer(t.parts.get("answer", ""))}
    item = _ITEM_ID.match(t.parts.get("item", ""))
    item_id = (item.group("open"), item.group("close")) if item else None
    referenced = False
    if item_id and item_id[0] and item_id[1]:
        ref = _reference_pattern(*item_id)
        referenced = any(ref.search(text) for name, text in t.parts.items() if name not in ("item", "prefix"))
        referenced = referenced or t.parts.get("prefix", "").endswith(item_id[0])
    words: dict[str, str] = {}
    everything = "\n".join(t.parts.values())
    for label, variants in t.choices.items():
        word = variants[0].strip() if variants else ""
        if word and re.search(_quoted(word), everything):
            words[label] = word
    sep = t.extra.get("item_separator")
    if isinstance(sep, str) and sep and not sep.strip():
        joiner = "extra"
    elif "item" in t.parts and t.parts["item"] != t.parts["item"].rstrip() and not sep:
        joiner = "trailing"
    else:
        joiner = ""
    low = everything.lower()
    noun = "Document" if low.count("document") > low.count("passage") else "Passage"
    return Structure(fields, frozenset(labelled), item_id, referenced, words, joiner, noun)


def _reference_pattern(open_: str, close: str) -> re.Pattern[str]:
    return re.compile(re.escape(open_) + r"(?P<x>[A-Z]|\d{1,2}|\{id\})?" + re.escape(close))


def _quoted(word: str) -> str:
    return r"(?P<q>['\"])(?P<w>" + re.escape(word) + r")(?P<rest>[^'\"\n]{0,40}?)(?P=q)"


@dataclass(frozen=True)
class Choices:
    """The values of one format, resolved (``None``: leave as written)."""

    casing: Callable[[str], str] | None = None
    separator: str | None = None
    spacing: str | None = None
    id_style: str | None = None
    label_style: str | None = None
    answers: Callable[[str], str] | None = None


def rewrite(t: Template, c: Choices) -> Template:
    """``t`` with its formatting elements rewritten as ``c`` says; placeholders and wording stay."""
    s = analyse(t)
    parts = {name: _rewrite_part(name, text, s, c) for name, text in t.parts.items()}
    choices = dict(t.choices)
    if c.answers and s.answer_words:
        for label in s.answer_words:
            styled = tuple(_restyle_variant(v, c.answers) for v in t.choices[label])
            choices[label] = tuple(dict.fromkeys(styled + tuple(t.choices[label])))
    extra = dict(t.extra)
    if c.spacing is not None and s.item_joiner == "extra":
        extra["item_separator"] = c.spacing
    elif c.spacing is not None and s.item_joiner == "trailing":
        parts["item"] = parts["item"].rstrip() + c.spacing
    return replace(t, parts=parts, choices=choices, extra=extra)


def _restyle_variant(v: str, fn: Callable[[str], str]) -> str:
    core = v.strip()
    i = v.find(core) if core else 0
    return v[:i] + fn(core) + v[i + len(core):]


def _rewrite_part(name: str, text: str, s: Structure, c: Choices) -> str:
    edits: list[tuple[int, int, str]] = []
    fields = s.fields.get(name, ())
    casing = c.casing or (lambda x: x)
    for m in fields:
        edits.append((m.start(), m.end(), _field(m, casing, c, at_end=not text[m.end():].strip())))
    for a, b in zip(fields, fields[1:]):
        between = text[a.end():b.start()]
        j = _JOIN.match(between)
        if j and c.spacing is not None:
            g0 = a.end() + j.start("gap")
            edits.append((g0, g0 + len(j.group("gap")), c.spacing))
    for desc in s.labelled:
        pat = re.compile(r"(?<![A-Za-z])(?P<desc>" + re.escape(desc)
                         + r") (?P<lopen>[\[(]?)(?P<lab>[A-Z]|\{label\})(?P<lclose>[\])]?)(?![A-Za-z0-9_])")
        for m in pat.finditer(text):
            if _PAIRS.get(m.group("lopen")) == m.group("lclose"):
                edits.append((m.start(), m.end(), casing(m.group("desc")) + " " + _label(m, c)))
    if name == "item" and s.item_id is not None and c.id_style is not None:
        m = _ITEM_ID.match(text)
        if m:
            edits.append((0, m.end(), _enumerator(c, casing, s.noun)))
    elif s.id_referenced and c.id_style in BRACKETED and s.item_id is not None:
        new_open, new_close = ID_STYLES[c.id_style]
        if name == "prefix":
            if text.endswith(s.item_id[0]):
                edits.append((len(text) - len(s.item_id[0]), len(text), new_open))
        else:
            for m in _reference_pattern(*s.item_id).finditer(text):
                edits.append((m.start(), m.end(), new_open + (m.group("x") or "") + new_close))
    if c.answers and s.answer_words:
        fn = c.answers
        for word in set(s.answer_words.values()):
            for m in re.finditer(_quoted(word), text):
                edits.append((m.start("w"), m.end("rest"), fn(m.group("w") + m.group("rest"))))
    return _apply(text, edits)


def _field(m: re.Match[str], casing: Callable[[str], str], c: Choices, at_end: bool) -> str:
    out = casing(m.group("desc"))
    if m.group("tag"):
        out = f"<{out}>"
    if m.group("lab"):
        out += " " + _label(m, c)
    sep = m.group("sep") if c.separator is None else c.separator
    if at_end and c.separator is not None:
        sep = sep.rstrip()  # an answer slot: "Output:" / "Output -" / "Output"
    return out + sep


def _label(m: re.Match[str], c: Choices) -> str:
    if c.label_style is None:
        return m.group("lopen") + m.group("lab") + m.group("lclose")
    o, cl = LABEL_STYLES[c.label_style]
    return o + m.group("lab") + cl


def _enumerator(c: Choices, casing: Callable[[str], str], noun: str) -> str:
    style = c.id_style or "brackets"
    if style == "descriptor":
        sep = c.separator if c.separator is not None else ": "
        return f"{casing(noun)} {{id}}{sep}"
    o, cl = ID_STYLES[style]
    return f"{o}{{id}}{cl} "


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply non-overlapping edits (earlier-listed edits win an overlap)."""
    taken: list[tuple[int, int]] = []
    keep = []
    for a, b, new in edits:
        if any(a < y and x < b for x, y in taken):
            continue
        taken.append((a, b))
        keep.append((a, b, new))
    out, pos = [], 0
    for a, b, new in sorted(keep):
        out.append(text[pos:a])
        out.append(new)
        pos = b
    out.append(text[pos:])
    return "".join(out)


__all__ = ["BRACKETED", "CASINGS", "ID_STYLES", "LABEL_STYLES", "SEPARATORS", "SPACINGS", "Choices", "Structure",
           "analyse", "rewrite"]
