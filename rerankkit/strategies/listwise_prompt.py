"""Building one window's prompt from a listwise template, within a token budget, as rank_llm does.

A listwise template has the parts ``head`` (before the documents), ``item`` (one listed document:
``{id}`` and ``{doc}``), ``tail`` (after them), optional ``system``, ``prefix`` (start of the
assistant turn) and ``titled`` (the text of a document that has a title: ``{title}``, ``{text}``;
rank_llm's ``"Title: {title} Content: {text}"``). ``extra.turns: multi`` renders RankGPT's
conversation instead of one user message: ``head`` / ``head_reply``, then per document ``item`` /
``item_reply``, then ``tail``.

Each document's text is prepared as castorini/rank_llm prepares it (``_convert_doc_to_prompt_content``):
the title layout, surrounding space stripped, ``ftfy.fix_text``, whitespace collapsed, cut to
``max_doc_words · 20 / n`` words in a window of ``n`` documents (300 words at the default window of
20), and bracketed numbers such as ``[3]`` written ``(3)`` (in a template whose ``item`` lists
``({id})``, ``(3)`` is written ``[3]``: :func:`identifier_wrapper`). The query gets the same escaping,
and every message gets rank_llm's final ``fix_text`` pass.

Budget (rank_llm's ``create_prompt``): while the prompt (chat template applied, counted the way
``len(tokenizer.encode(prompt))`` counts it, so with the special tokens the tokenizer adds) exceeds
``max_prompt_tokens`` minus the tokens of a full answer, every document's word cap is lowered by
``max(1, overflow // (4·n))`` and the window is rebuilt. The cap is shared, so no document is
dropped; the prompt must also fit the backend's own context with room for the answer. Where that
step would take the cap below zero (passages of many tokens per word), rank_llm slices with a
negative cap, keeping all but the last words of each passage and emptying the short ones;
rerankkit takes the largest cap that fits instead (bisection, counted as ``budget_bisected_windows``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..backends.base import Backend, Message, Prompt
from ..errors import InputError, TemplateError
from ..prompts.template import Template, TemplateSchema
from ..types import Doc
from .permutation import BRACKETS, NUMERIC, STYLES, escape_identifiers
from .truncation import cut_words

log = logging.getLogger(__name__)

_QN = {"query", "num"}
_PAIRS = {"[": "]", "(": ")", "<": ">", "": ""}
SCHEMA = TemplateSchema.of(
    {"item": {"id", "doc"}},
    {"system": _QN, "head": _QN, "tail": _QN, "prefix": set(), "head_reply": {"num"}, "item_reply": {"id"},
     "titled": {"title", "text"}},
)
WORDS_WINDOW = 20  # rank_llm: a window of n documents gives each max_doc_words * (20 / n) words
_SAFETY_TOKENS = 4  # slack kept in the backend's own context (tokenizers may count a BOS differently)


def identifier_style(template: Template) -> str:
    style = str(template.extra.get("identifiers", NUMERIC))
    if style not in STYLES:
        raise TemplateError(f"template {template.name!r}: extra.identifiers must be one of {STYLES}, not {style!r}")
    return style


_ITEM_ID = re.compile(r"(?P<open>[\[(<]?)\{id\}(?P<close>[\])>]?)")


def identifier_wrapper(template: Template) -> tuple[str, str]:
    """How the template's ``item`` wraps an identifier: ``("[", "]")`` for ``[{id}]``, ``("(", ")")`` for
    ``({id})``, ``("", "")`` for a bare ``{id}``; documents and query are escaped, the answer's length
    estimated and FIRST's target written with the same."""
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
    """The chat prompt that lists ``texts`` (already prepared) under ``ids`` for ``query``."""
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


def fix_text(text: str, unescape_html: bool | str = "auto") -> str:
    """``ftfy.fix_text``: mojibake, curly quotes, full-width forms, HTML entities (rank_llm's cleaning)."""
    import ftfy

    return ftfy.fix_text(text, unescape_html=unescape_html)


def fix_messages(prompt: Prompt) -> Prompt:
    """rank_llm's last pass, ``fix_text`` over the rendered prompt, applied message by message. ftfy
    works line by line and stops unescaping HTML entities once it has seen a ``<``, which a chat
    template's opening tag puts before every message, so entities are kept escaped here."""
    msgs = tuple(Message(m.role, fix_text(m.content, unescape_html=False)) for m in prompt.messages)
    return Prompt(msgs, prompt.prefix)


def prompt_tokens(backend: Backend, prompt: Prompt) -> int:
    """Tokens of the rendered prompt without its assistant prefix (rank_llm's prompt has none)."""
    return backend.count_tokens([backend.render(Prompt(prompt.messages))])[0]


def added_special_tokens(backend: Backend) -> int:
    """Special tokens the backend's tokenizer adds to any text (a Llama/Mistral BOS: 1; GPT-2, Qwen,
    SmolLM2: 0). rank_llm counts them (``len(tokenizer.encode(prompt))``, and ``- 1`` in its answer
    estimate); 0 when the backend has no local transformers tokenizer."""
    inner = getattr(backend, "inner", backend)  # a CachedBackend's wrapped backend
    for holder in (getattr(inner, "tok", None), getattr(inner, "local", None)):
        tok = getattr(holder, "tok", None)
        if callable(tok):
            try:
                return len(tok("")["input_ids"])
            except Exception:  # noqa: BLE001  (a tokenizer that cannot encode "" adds nothing we can see)
                return 0
    return 0


def context_length(backend: Backend) -> int | None:
    """The prompt tokens a backend accepts, when it declares them: the protocol's ``max_input_tokens()``
    (the hf backend: its ``max_length`` option, else the model's context; wrappers such as the answer
    cache pass it through), else a ``max_length`` / ``context_length`` attribute or method."""
    limit = getattr(backend, "max_input_tokens", None)
    n = limit() if callable(limit) else None
    if _positive_int(n):
        return n
    for name in ("max_length", "context_length"):
        n = getattr(backend, name, None)
        if callable(n):
            n = n()
        if _positive_int(n):
            return n
    return None


def _positive_int(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


class WindowPrompter:
    """Renders windows for one strategy: prepares document texts and fits the prompt budget.

    ``max_doc_words``: words per document in a window of 20 (scaled by 20 / n; None: no cut);
    ``max_doc_tokens``: an optional further cap with the backend's tokenizer; ``max_prompt_tokens``:
    rank_llm's ``context_size`` (None: only the backend's context); ``escape``: ``[3]`` -> ``(3)`` in
    passages and query (``wrapper``: the template's identifier wrapping, ``(3)`` -> ``[3]`` with
    ``("(", ")")``); ``fix``: ftfy's ``fix_text`` on passages and messages.
    """

    def __init__(self, template: Template, *, escape: bool = True, fix: bool = True,
                 max_doc_words: int | None = 300, max_doc_tokens: int | None = None,
                 max_prompt_tokens: int | None = 4096, wrapper: tuple[str, str] = BRACKETS):
        self.template = template
        self.wrapper = wrapper
        self.multi = check_turns(template)
        self.escape = escape
        self.fix = fix
        self.max_doc_words = max_doc_words
        self.max_doc_tokens = max_doc_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self._specials: dict[int, int] = {}

    def base_text(self, doc: Doc) -> str:
        """A document's text before any cut: the title layout, stripped, fixed, whitespace collapsed."""
        if doc.title and "titled" in self.template.parts:
            text = self.template.fill("titled", title=doc.title, text=doc.text)
        else:
            text = doc.prompt_text()
        text = text.strip()
        if self.fix:
            text = fix_text(text)
        return " ".join(text.split())

    def _escape(self, text: str) -> str:
        return escape_identifiers(text, self.wrapper) if self.escape else text

    def doc_text(self, ctx, doc: Doc, base: str, words: float | None) -> str:
        """``base`` cut to ``int(words)`` words (and ``max_doc_tokens``), identifiers escaped."""
        text = base if words is None else cut_words(base, int(words))
        if self.max_doc_tokens is not None:
            text = ctx.truncate(text, self.max_doc_tokens)
        if text != base:
            ctx.truncate.note(doc.prompt_text())
        return self._escape(text)

    def build(self, ctx, query: str, ids: Sequence[str], docs: Sequence[Doc], bases: Sequence[str],
              words: float | None) -> tuple[Prompt, list[str]]:
        texts = [self.doc_text(ctx, d, b, words) for d, b in zip(docs, bases)]
        q = self._escape(query)
        prompt = build_prompt(self.template, q, ids, texts, self.multi)
        return (fix_messages(prompt) if self.fix else prompt), texts

    def specials(self, backend: Backend) -> int:
        key = id(backend)
        if key not in self._specials:
            self._specials[key] = added_special_tokens(backend)
        return self._specials[key]

    def __call__(self, ctx, query: str, ids: Sequence[str], docs: Sequence[Doc], answer_tokens: int,
                 model_reserve: int) -> Prompt:
        """The window prompt. ``answer_tokens``: rank_llm's estimate of a full answer, kept free in
        ``max_prompt_tokens``; ``model_reserve``: tokens kept free in the backend's own context."""
        n = len(docs)
        bases = [self.base_text(d) for d in docs]
        words = self.max_doc_words * (WORDS_WINDOW / n) if self.max_doc_words else None
        prompt, first = self.build(ctx, query, ids, docs, bases, words)
        backend = ctx.backend
        limits = []
        if self.max_prompt_tokens:
            limits.append(self.max_prompt_tokens - answer_tokens)
        model_ctx = context_length(backend)
        if model_ctx:
            limits.append(model_ctx - model_reserve - _SAFETY_TOKENS)
        if not limits:
            return prompt
        limit = min(limits)
        texts = first

        def fits(p: Prompt) -> int:  # tokens over the limit, counted as rank_llm counts them
            return prompt_tokens(backend, p) + self.specials(backend) - limit

        while (over := fits(prompt)) > 0:
            if words is None:
                words = float(max((len(b.split()) for b in bases), default=0))
            step = max(1, over // (4 * n))
            if words - step > -1:  # rank_llm's step (int() of a cap in (-1, 0) is 0 words)
                words -= step
                prompt, texts = self.build(ctx, query, ids, docs, bases, words)
                continue
            # rank_llm would slice with a negative cap (all but the last |cap| words, emptying short
            # passages); take the largest cap that fits instead
            lo, hi = 0, max(int(words) - 1, 0)
            prompt, texts = self.build(ctx, query, ids, docs, bases, 0)
            if fits(prompt) > 0:
                raise InputError(
                    f"a window of {n} documents does not fit {limit} prompt tokens even with empty passages; "
                    "use a smaller window or a larger max_prompt_tokens / context")
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(self.build(ctx, query, ids, docs, bases, mid)[0]) <= 0:
                    lo = mid
                else:
                    hi = mid - 1
            words = float(lo)
            prompt, texts = self.build(ctx, query, ids, docs, bases, words)
            ctx.counters["budget_bisected_windows"] += 1
            break
        if texts != first:
            shortened = sum(1 for a, b in zip(first, texts) if a != b)
            ctx.counters["budget_truncated_windows"] += 1
            ctx.counters["budget_truncated_docs"] += shortened
            log.info("window of %d docs over %d tokens: passages cut to %d words", n, limit, int(words or 0))
        return prompt
