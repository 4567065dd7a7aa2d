"""Few-shot query generation: one query per sampled document, through any backend that can GENERATE.

The prompt is a template YAML of strategy ``query-generation`` (``duqgen`` is DUQGen's format): a part
``example`` (``{n}``, ``{doc}``, ``{query}``) repeated for each few-shot pair, and a part ``user`` holding
``{examples}`` and the document to write a query for (``{n}``, ``{doc}``). Few-shot pairs come from the
template's ``extra.examples`` or from a JSONL file of ``{"document": ..., "query": ...}`` lines.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends.base import Backend, Capability, Prompt, Sampling
from ..errors import CapabilityError, ConfigError, InputError
from ..prompts.template import Template, TemplateSchema, load_template
from ..types import Doc

log = logging.getLogger(__name__)

STRATEGY = "query-generation"
SCHEMA = TemplateSchema.of({"example": {"n", "doc", "query"}, "user": {"examples", "n", "doc"}},
                           {"system": set(), "prefix": set()})


@dataclass(frozen=True)
class FewShot:
    """One in-context example: a document and a query it answers."""

    document: str
    query: str


@dataclass(frozen=True)
class Generated:
    """The query generated for one document: ``query`` cleaned (empty when unusable), ``raw`` as generated."""

    docid: str
    query: str
    raw: str


def load_generation_template(name_or_path: str) -> Template:
    """A ``query-generation`` template by name or path, checked against its schema."""
    t = load_template(name_or_path)
    if t.strategy != STRATEGY:
        raise ConfigError(f"template {t.name!r} is for strategy {t.strategy!r}; query generation needs a "
                          f"template of strategy {STRATEGY!r} (e.g. 'duqgen')")
    return t.validate(SCHEMA)


def template_examples(t: Template) -> list[FewShot]:
    """The few-shot pairs a template carries in ``extra.examples``."""
    return _pairs(t.extra.get("examples") or [], f"template {t.name!r} extra.examples")


def read_fewshot_file(path: str | Path) -> list[FewShot]:
    """Few-shot pairs from a JSONL file, one ``{"document": ..., "query": ...}`` object per line."""
    p = Path(path)
    try:
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read few-shot examples from {p}: {exc}") from None
    return _pairs(rows, str(p))


def _pairs(rows: Sequence[object], where: str) -> list[FewShot]:
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping) or not str(r.get("document", "")).strip() or not str(r.get("query", "")).strip():
            raise InputError(f"{where}: example {i + 1} needs a non-empty 'document' and 'query'")
        out.append(FewShot(" ".join(str(r["document"]).split()), " ".join(str(r["query"]).split())))
    return out


class QueryGenerator:
    """Builds the few-shot prompt for a document and asks ``backend`` for the query (greedy by default).

    Documents are cut to ``max_doc_tokens`` tokens of the backend's tokenizer, few-shot documents to
    ``fewshot_doc_tokens`` (default: the same).
    Wrap ``backend`` in :class:`~rerankkit.backends.cached.CachedBackend` to keep every answer: an
    interrupted run then resumes without asking again."""

    def __init__(self, template: Template, examples: Sequence[FewShot], backend: Backend, max_new_tokens: int = 32,
                 max_doc_tokens: int = 256, sampling: Sampling | None = None, fewshot_doc_tokens: int | None = None):
        if Capability.GENERATE not in backend.capabilities:
            raise CapabilityError(f"query generation needs a backend that can GENERATE; {backend.name!r} cannot")
        if not examples:
            raise ConfigError("query generation needs at least one few-shot example")
        self.template = template
        self.examples = list(examples)
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.max_doc_tokens = max_doc_tokens
        self.sampling = sampling
        sep = str(template.extra.get("separator", "\n\n"))
        shot_tokens = fewshot_doc_tokens or max_doc_tokens
        self._shots = sep.join(template.fill("example", n=i + 1, doc=self._cut(ex.document, shot_tokens),
                                             query=ex.query) for i, ex in enumerate(self.examples))

    def _cut(self, text: str, tokens: int | None = None) -> str:
        return self.backend.truncate(" ".join(text.split()), tokens or self.max_doc_tokens)

    def prompt(self, doc: Doc) -> Prompt:
        """The prompt for ``doc``: the few-shot examples, then the document with an open query."""
        return self.template.prompt(examples=self._shots, n=len(self.examples) + 1, doc=self._cut(doc.prompt_text()))

    def generate(self, docs: Sequence[Doc], batch: int = 16,
                 on_batch: Callable[[int], None] | None = None) -> list[Generated]:
        """One query per document, ``batch`` prompts per backend call (in document order)."""
        out: list[Generated] = []
        for i in range(0, len(docs), max(1, batch)):
            chunk = docs[i : i + batch]
            gens = self.backend.generate([self.prompt(d) for d in chunk], self.max_new_tokens, self.sampling)
            out += [Generated(d.docid, clean_query(g.text), g.text) for d, g in zip(chunk, gens)]
            if on_batch:
                on_batch(len(chunk))
        return out


_SPILL = re.compile(r"\b(example\s*\d+\s*:|document\s*:|relevant query\s*:)", re.IGNORECASE)


def clean_query(text: str, max_chars: int = 300) -> str:
    """The query in a generated answer: its first non-empty line, cut where the model starts another example
    or after the first question mark, without surrounding quotes; empty when nothing usable is left (DUQGen's
    released code keeps the first line and cuts at the first '?' in the same way)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    m = _SPILL.search(line)
    if m:
        line = line[: m.start()].strip()
    if "?" in line:
        line = line[: line.index("?") + 1]
    line = line.strip().strip("\"'`").strip()
    if len(line) < 3 or len(line) > max_chars or not any(ch.isalpha() for ch in line):
        return ""
    return line
