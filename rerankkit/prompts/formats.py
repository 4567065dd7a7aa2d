"""Prompt formats: small frozen records that render a semantically equivalent variant of a template.

A :class:`Format` picks one value per axis of the grammar of Sclar et al. (ICLR 2024, arXiv:2310.11324,
"FormatSpread"), adapted to reranking templates (:mod:`.grammar` finds where each axis applies):

=============  ====================================================================================
axis           values (``as-is`` keeps the template's own)
=============  ====================================================================================
casing         title, upper, lower — of field descriptors (``Query:``) and labelled ones (``Passage A``)
separator      colon ``": "``, dash ``" - "``, newline ``"\\n"``, colon-newline ``":\\n"`` — after a descriptor
spacing        newline, blank-line, space — between consecutive fields and between listed items
enumeration    of listed identifiers: brackets ``[1]``, parens ``(1)``, dot ``1.``, descriptor ``Passage 1:``;
               of comparison labels: plain ``Passage A``, brackets ``Passage [A]``, parens ``Passage (A)``
answers        title, upper, lower — of answer words the prompt quotes (``'Yes'``); the choices follow
=============  ====================================================================================

Meaning and answer reading are kept: a re-cased ``Passage`` is re-cased in the answers a comparison strategy
scores; a re-wrapped identifier is re-wrapped wherever the prompt refers to it (``[] > []``, the assistant
prefix ``[``) and listwise strategies read the wrapping back from the template's ``item``; an identifier
style the prompt's references cannot follow (``1.`` where the answer format says ``[] > []``) is not offered.
A strategy names the enumerations its answer reading follows (``Strategy.format_enumerations``); callers pass
them as ``enumerations``. :func:`sample_formats` draws distinct formats reproducibly from a seed.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ConfigError
from .grammar import (
    BRACKETED,
    CASINGS,
    ID_STYLES,
    LABEL_STYLES,
    SEPARATORS,
    SPACINGS,
    Choices,
    analyse,
    rewrite,
)
from .template import Template

AS_IS = "as-is"
ENUMERATIONS = ("plain", "brackets", "parens", "dot", "descriptor")
VALUES: Mapping[str, tuple[str, ...]] = {
    "casing": (AS_IS, *CASINGS),
    "separator": (AS_IS, *SEPARATORS),
    "spacing": (AS_IS, *SPACINGS),
    "enumeration": (AS_IS, *ENUMERATIONS),
    "answers": (AS_IS, *CASINGS),
}
AXES = tuple(VALUES)


@dataclass(frozen=True)
class Format:
    """One value per axis; ``Format()`` is the template as written."""

    casing: str = AS_IS
    separator: str = AS_IS
    spacing: str = AS_IS
    enumeration: str = AS_IS
    answers: str = AS_IS

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v not in VALUES[f.name]:
                raise ConfigError(f"format {f.name} must be one of {', '.join(VALUES[f.name])}, not {v!r}")

    @property
    def is_original(self) -> bool:
        return all(getattr(self, a) == AS_IS for a in AXES)

    def key(self) -> str:
        """``"original"``, or the axes that differ: ``"casing=upper,separator=dash"``."""
        diff = [f"{a}={getattr(self, a)}" for a in AXES if getattr(self, a) != AS_IS]
        return ",".join(diff) or "original"

    @classmethod
    def parse(cls, key: str) -> Format:
        """The format a :meth:`key` names."""
        if key.strip() in ("", "original"):
            return cls()
        values: dict[str, str] = {}
        for item in key.split(","):
            axis, sep, value = item.partition("=")
            if not sep or axis.strip() not in VALUES:
                raise ConfigError(f"format {key!r}: expected AXIS=VALUE pairs, axes {', '.join(AXES)}")
            values[axis.strip()] = value.strip()
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        return {a: getattr(self, a) for a in AXES}

    def choices(self, template: Template) -> Choices:
        """The grammar's resolved values for ``template`` (what does not apply there is left as written)."""
        s = analyse(template)
        e = self.enumeration
        id_style = e if e in ID_STYLES and s.item_id is not None else None
        if id_style is not None and s.id_referenced and id_style not in BRACKETED:
            id_style = None  # the prompt refers to bracketed identifiers; "1." / "Passage 1:" cannot follow
        return Choices(
            casing=CASINGS.get(self.casing),
            separator=SEPARATORS.get(self.separator),
            spacing=SPACINGS.get(self.spacing),
            id_style=id_style,
            label_style=e if e in LABEL_STYLES and s.labelled else None,
            answers=CASINGS.get(self.answers),
        )

    def apply(self, template: Template) -> Template:
        """The template rendered in this format (the same template when the format is the original)."""
        if self.is_original:
            return template
        out = rewrite(template, self.choices(template))
        note = f"[format {self.key()} of {template.name}] "
        return replace(out, name=f"{template.name}+{self.key()}", description=note + template.description)


def signature(t: Template) -> tuple[Any, ...]:
    """What a model sees of a template and how its answers are read (two formats are the same if equal)."""
    return (tuple(sorted(t.parts.items())), tuple((k, tuple(v)) for k, v in t.choices.items()),
            tuple(sorted((k, repr(v)) for k, v in t.extra.items())))


def format_space(template: Template, enumerations: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Per axis, the values that change ``template`` (``as-is`` first). ``enumerations``: the enumeration
    values allowed (those the strategy's answer reading follows; ``None``: all)."""
    allowed = set(ENUMERATIONS if enumerations is None else enumerations)
    base = signature(template)
    out: dict[str, tuple[str, ...]] = {}
    for axis in AXES:
        keep = [AS_IS]
        for v in VALUES[axis][1:]:
            if axis == "enumeration" and v not in allowed:
                continue
            if signature(Format(**{axis: v}).apply(template)) != base:
                keep.append(v)
        out[axis] = tuple(keep)
    return out


def sample_formats(template: Template, k: int, seed: int = 0,
                   enumerations: Iterable[str] | None = None) -> list[Format]:
    """``k`` formats of ``template`` that render differently: the original first, then draws (uniform over the
    grammar's combinations, seeded) whose rendering differs from every earlier one. Fewer when the grammar
    has fewer distinct renderings."""
    if k < 1:
        raise ConfigError(f"the number of formats must be at least 1, not {k}")
    space = format_space(template, enumerations)
    combos = list(itertools.product(*(space[a] for a in AXES)))
    random.Random(seed).shuffle(combos)
    out = [Format()]
    seen = {signature(template)}
    for combo in combos:
        if len(out) >= k:
            break
        f = Format(**dict(zip(AXES, combo)))
        sig = signature(f.apply(template))
        if sig not in seen:
            seen.add(sig)
            out.append(f)
    return out


__all__ = ["AS_IS", "AXES", "ENUMERATIONS", "VALUES", "Format", "format_space", "sample_formats", "signature"]
