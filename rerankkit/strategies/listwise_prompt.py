"""Building one window's prompt from a listwise template, within a token budget.

A listwise template has the parts ``head`` (before the documents), ``item`` (one listed document:
``{id}`` and ``{doc}``), ``tail`` (after them), optional ``system`` and ``prefix`` (start of the
assistant turn). ``extra.turns: multi`` renders RankGPT's conversation instead of one user message:
``head`` / ``head_reply``, then per document ``item`` / ``item_reply``, then ``tail``.

When a window would overflow the budget (the backend's context length or ``max_prompt_tokens``),
every document is cut to the same token cap (documents shorter than the cap keep their text), so the
budget is shared evenly and no document is dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..backends.base import Backend, Message, Prompt
from ..errors import InputError, TemplateError
from ..prompts.template import Template, TemplateSchema
from .permutation import BRACKETS, NUMERIC, STYLES, escape_identifiers

log = logging.getLogger(__name__)

_QN = {"query", "num"}
_PAIRS = {"[": "]", "(": ")", "<": ">", "": ""}
SCHEMA = TemplateSchema.of(
    {"item": {"id", "doc"}},
    {"system": _QN, "head": _QN, "tail": _QN, "prefix": set(), "head_reply": {"num"}, "item_reply": {"id"}},
)
_SAFETY_TOKENS = 4  # chat-template tokens a tokenizer may count differently (BOS, end of turn)


def identifier_style(template: Template) -> str:
    style = str(template.extra.get("identifiers", NUMERIC))
    if style not in STYLES:
        raise TemplateError(f"template {template.name!r}: extra.identifiers must be one of {STYLES}, not {style!r}")
    return style


_ITEM_ID = re.compile(r"(?P<open>[\[(<]?)\{id\}(?P<close>[\])>]?)")


def identifier_wrapper(template: Template) -> tuple[str, str]:
    """How the template's ``item`` wraps an identifier: ``("[", "]")`` for ``[{id}]``, ``("(", ")")`` for
    ``({id})``, ``("", "")`` for a bare ``{id}``; answers are parsed and documents escaped with the same."""
    m = _ITEM_ID.search(template.parts.get("item", ""))
    if m is None or _PAIRS.get(m.group("open")) != m.group("close"):
        return BRACKETS if m is None else ("", "")
    return m.group("open"), m.group("close")


def check_turns(template: Template) -> bool:
    """True for a multi-turn (RankGPT conversation) template; checks its reply parts."""
    turns = str(template.extra.get("turns", "single"))
    if turns not in ("single", "multi"):
        raise TemplateError(f"template {template.name!r}: extra.turns must be 'single' or 'multi', not {turns!r}")
    if turns == "multi":
        for part in ("head", "head_reply", "item_reply", "tail"):
            if part not in template.parts:
                raise TemplateError(f"template {template.name!r}: a multi-turn template needs the part {part!r}")
    return turns == "multi"


def build_prompt(template: Template, query: str, ids: Sequence[str], texts: Sequence[str], multi: bool) -> Prompt:
    """The chat prompt that lists ``texts`` under ``ids`` for ``query``."""
    num = len(texts)
    v = {"query": query, "num": num}
    msgs: list[Message] = []
    if template.parts.get("system"):
        msgs.append(Message("system", template.fill("system", **v)))
    items = [template.fill("item", id=i, doc=t) for i, t in zip(ids, texts)]
    if multi:
        msgs += [Message("user", template.fill("head", **v)), Message("assistant", template.fill("head_reply", **v))]
        for i, item in zip(ids, items):
            msgs += [Message("user", item), Message("assistant", template.fill("item_reply", id=i))]
        msgs.append(Message("user", template.fill("tail", **v)))
    else:
        msgs.append(Message("user", template.fill("head", **v) + "".join(items) + template.fill("tail", **v)))
    return Prompt(tuple(msgs), template.fill("prefix") if "prefix" in template.parts else "")


def prompt_tokens(backend: Backend, prompt: Prompt) -> int:
    return backend.count_tokens([backend.render(prompt)])[0]


def context_length(backend: Backend) -> int | None:
    """The prompt tokens a backend accepts, when it declares them: its ``max_length`` option (the hf
    backend cuts longer prompts from the left), else ``context_length`` (an attribute or a method)."""
    for name in ("max_length", "context_length"):
        n = getattr(backend, name, None)
        if callable(n):
            n = n()
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return n
    return None


def even_cap(lengths: Sequence[int], total: int) -> int:
    """The largest cap c with sum(min(l, c)) <= total (water-filling); 0 when total < len(lengths)."""
    if sum(lengths) <= total:
        return max(lengths, default=0)
    rest = total
    ls = sorted(lengths)
    for k, length in enumerate(ls):
        share = rest // (len(ls) - k)
        if length > share:
            return share
        rest -= length
    return ls[-1]  # pragma: no cover  (the sum check above returns first)


class WindowPrompter:
    """Renders windows for one strategy: escapes identifiers, truncates, and fits the budget."""

    def __init__(self, template: Template, style: str, escape: bool, max_doc_tokens: int | None,
                 max_prompt_tokens: int | None, wrapper: tuple[str, str] = BRACKETS):
        self.template = template
        self.style = style
        self.wrapper = wrapper
        self.multi = check_turns(template)
        self.escape = escape
        self.max_doc_tokens = max_doc_tokens
        self.max_prompt_tokens = max_prompt_tokens

    def _clean(self, text: str) -> str:
        return escape_identifiers(text, self.style, self.wrapper) if self.escape else text

    def __call__(self, ctx, query: str, ids: Sequence[str], texts: Sequence[str], reserve: int) -> Prompt:
        """The window prompt; ``reserve`` tokens are kept free for the answer."""
        q = self._clean(query)
        cut = [self._clean(ctx.truncate(t)) for t in texts]
        prompt = build_prompt(self.template, q, ids, cut, self.multi)
        budget = self.max_prompt_tokens or context_length(ctx.backend)
        if budget is None:
            return prompt
        limit = budget - reserve - _SAFETY_TOKENS
        total = prompt_tokens(ctx.backend, prompt)
        if total <= limit:
            return prompt
        lengths = ctx.backend.count_tokens(cut)
        avail = limit - (total - sum(lengths))
        for _ in range(8):
            if avail < len(cut):
                raise InputError(
                    f"a window of {len(cut)} documents does not fit {budget} prompt tokens even with one token per "
                    f"document (the instructions and query take {total - sum(lengths)}); use a smaller window "
                    "or a larger max_prompt_tokens / context"
                )
            cap = even_cap(lengths, avail)
            fitted = [self._clean(ctx.truncate(t, min(cap, self.max_doc_tokens or cap))) for t in texts]
            prompt = build_prompt(self.template, q, ids, fitted, self.multi)
            total_now = prompt_tokens(ctx.backend, prompt)
            if total_now <= limit:
                shortened = sum(1 for a, b in zip(cut, fitted) if a != b)
                ctx.counters["budget_truncated_windows"] += 1
                ctx.counters["budget_truncated_docs"] += shortened
                log.info("window of %d docs over %d tokens: %d docs cut to %d tokens each", len(cut), budget,
                         shortened, cap)
                return prompt
            avail -= max(1, total_now - limit)
        raise InputError(f"could not fit a window of {len(cut)} documents into {budget} prompt tokens")
