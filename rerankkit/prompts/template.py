"""Templates: YAML files of text parts with declared ``{placeholders}``.

A template names its strategy, its source (paper or model card the text is taken from), and text
parts such as ``system``, ``user``, ``prefix`` (start of the assistant turn) and strategy-specific
parts (``item`` for one listed document). ``choices`` maps answer labels to their token variants.
Loading validates every part against the strategy's :class:`TemplateSchema`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..backends.base import Message, Prompt
from ..errors import TemplateError, UnknownNameError

TEMPLATE_DIR = Path(__file__).parent / "templates"
_TEXT_PARTS = ("system", "user", "prefix")


@dataclass(frozen=True)
class TemplateSchema:
    """What a strategy accepts: per part, the placeholders it must and may use."""

    required: Mapping[str, frozenset[str]]  # part -> placeholders that must appear
    optional: Mapping[str, frozenset[str]] = field(default_factory=dict)  # part -> may appear
    needs_choices: bool = False

    @classmethod
    def of(cls, required: Mapping[str, set[str]], optional: Mapping[str, set[str]] | None = None,
           needs_choices: bool = False) -> TemplateSchema:
        return cls({k: frozenset(v) for k, v in required.items()},
                   {k: frozenset(v) for k, v in (optional or {}).items()}, needs_choices)

    def allowed(self, part: str) -> frozenset[str]:
        return self.required.get(part, frozenset()) | self.optional.get(part, frozenset())


@dataclass(frozen=True)
class Template:
    name: str
    strategy: str
    parts: Mapping[str, str]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> Template:
        data = dict(data)
        try:
            tname = str(name or data.pop("name"))
            strategy = str(data.pop("strategy"))
        except KeyError as exc:
            raise TemplateError(f"template is missing the field {exc.args[0]!r}") from None
        data.pop("name", None)
        description = str(data.pop("description", ""))
        source = str(data.pop("source", ""))
        raw_choices = data.pop("choices", {}) or {}
        if not isinstance(raw_choices, Mapping):
            raise TemplateError(f"template {tname!r}: choices must map a label to a list of token variants")
        choices = {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in raw_choices.items()}
        extra = dict(data.pop("extra", {}) or {})
        parts: dict[str, str] = {}
        for k, v in data.items():
            if not isinstance(v, str):
                raise TemplateError(f"template {tname!r}: part {k!r} must be text (put other settings under 'extra')")
            parts[k] = v
        return cls(tname, strategy, parts, choices, description, source, extra)

    def to_dict(self) -> dict[str, Any]:
        """The template as a YAML-ready mapping; :meth:`from_dict` reads it back unchanged."""
        out: dict[str, Any] = {"name": self.name, "strategy": self.strategy}
        if self.description:
            out["description"] = self.description
        if self.source:
            out["source"] = self.source
        out.update(self.parts)
        if self.choices:
            out["choices"] = {k: list(v) for k, v in self.choices.items()}
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def placeholders(self, part: str) -> set[str]:
        text = self.parts.get(part, "")
        try:
            return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise TemplateError(f"template {self.name!r}, part {part!r}: {exc}") from None

    def validate(self, schema: TemplateSchema) -> Template:
        """Raise :class:`TemplateError` if the template does not fit ``schema``; return self."""
        for part in self.parts:
            allowed = schema.allowed(part)
            if part not in _TEXT_PARTS and part not in schema.required and part not in schema.optional:
                raise TemplateError(f"template {self.name!r}: unexpected part {part!r}")
            bad = self.placeholders(part) - allowed
            if bad:
                raise TemplateError(
                    f"template {self.name!r}, part {part!r}: unknown placeholder(s) {sorted(bad)}; "
                    f"allowed: {sorted(allowed)}"
                )
        for part, need in schema.required.items():
            if part not in self.parts:
                raise TemplateError(f"template {self.name!r}: missing required part {part!r}")
            missing = need - self.placeholders(part)
            if missing:
                raise TemplateError(f"template {self.name!r}, part {part!r}: must use {sorted(missing)}")
        if schema.needs_choices and not self.choices:
            raise TemplateError(f"template {self.name!r}: needs 'choices' (answer label -> token variants)")
        return self

    def fill(self, part: str, **values: Any) -> str:
        """One part with its placeholders substituted (values are inserted verbatim)."""
        text = self.parts.get(part, "")
        try:
            return text.format_map(values)
        except KeyError as exc:
            raise TemplateError(f"template {self.name!r}, part {part!r}: no value for {exc.args[0]!r}") from None

    def prompt(self, **values: Any) -> Prompt:
        """The chat prompt: optional system message, the user message, then the assistant prefix."""
        msgs = []
        if self.parts.get("system"):
            msgs.append(Message("system", self.fill("system", **values)))
        msgs.append(Message("user", self.fill("user", **values)))
        return Prompt(tuple(msgs), self.fill("prefix", **values) if "prefix" in self.parts else "")


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


@lru_cache(maxsize=256)
def _load_file(path: Path) -> Template:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise TemplateError(f"{path}: a template file must be a mapping")
    return Template.from_dict(data, name=data.get("name") or path.stem)


def load_template(name_or_path: str | Path) -> Template:
    """A packaged template by name, or a YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return _load_file(p.resolve())
    path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        import difflib

        names = template_names()
        raise UnknownNameError("template", str(name_or_path), difflib.get_close_matches(str(name_or_path), names), names)
    return _load_file(path)
