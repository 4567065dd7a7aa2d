"""A local tokenizer for backends whose model runs elsewhere (a server, the vLLM engine).

It renders prompts (the tokenizer's chat template, then the assistant prefix), gives token ids,
counts and truncates, and finds the token ids of an answer choice as the model would produce it
right after a rendered prompt. The hf backend uses it too, so all backends render alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .._lazy import require
from ..errors import BackendError
from .base import SEGMENT_BREAK, Prompt, without_breaks

log = logging.getLogger(__name__)


def load_tokenizer(ref: str) -> Any:
    """A transformers tokenizer from a hub id, a folder, a ``.gguf`` file or ``packaged:NAME``."""
    from ..models import materialize_gguf, resolve_model

    transformers = require("transformers", "hf", "a local tokenizer")
    res = resolve_model(ref)
    path = str(materialize_gguf(res.path, res.gguf_file)) if res.gguf_file else res.path
    try:
        return transformers.AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise BackendError(f"cannot load a tokenizer from {ref!r}: {exc}") from None


def is_local_ref(ref: str) -> bool:
    """Whether ``ref`` names a model on this machine (``packaged:NAME``, a file or a folder)."""
    from pathlib import Path

    return bool(ref) and (ref.startswith("packaged:") or Path(ref).expanduser().exists())


class LocalTokenizer:
    """Rendering and token ids with a transformers tokenizer.

    ``chat_template``: use the tokenizer's template (when it has one); ``chat_kwargs``: extra
    arguments for it (e.g. ``{"enable_thinking": False}``).
    """

    def __init__(self, tokenizer: Any, chat_template: bool = True,
                 chat_kwargs: Mapping[str, Any] | None = None) -> None:
        self.tok = tokenizer
        self.use_chat = bool(chat_template) and bool(getattr(tokenizer, "chat_template", None))
        self.chat_kwargs = dict(chat_kwargs or {})
        self._system_ok: bool | None = None
        self._cont: dict[tuple[str, str], list[int]] = {}
        self._text: dict[int, str] = {}

    def render(self, prompt: Prompt) -> str:
        """The text the model sees: chat template with the generation prompt, then ``prompt.prefix``."""
        if not self.use_chat:
            return prompt.plain_text()
        msgs = [{"role": m.role, "content": m.content} for m in prompt.messages]
        if self._system_ok is not False and msgs and msgs[0]["role"] == "system":
            try:
                text = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                                    **self.chat_kwargs)
                self._system_ok = True
                return text + prompt.prefix
            except Exception:  # some templates reject a system role: fold it into the user turn
                self._system_ok = False
        if msgs and msgs[0]["role"] == "system" and len(msgs) > 1:
            msgs = [{"role": msgs[1]["role"], "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"]}, *msgs[2:]]
        text = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **self.chat_kwargs)
        return text + prompt.prefix

    def encode(self, rendered: str) -> list[int]:
        """Token ids of a rendered prompt (a chat template carries its own special tokens); the parts
        between :data:`SEGMENT_BREAK` marks are tokenised apart and their ids concatenated."""
        if SEGMENT_BREAK in rendered:
            ids = self._encode_segments(rendered)
        else:
            ids = list(self.tok(rendered, add_special_tokens=not self.use_chat)["input_ids"])
        if not ids:
            ids = [next(i for i in (self.tok.bos_token_id, self.tok.eos_token_id, self.tok.pad_token_id, 0)
                        if i is not None)]
        return ids

    def _encode_segments(self, rendered: str) -> list[int]:
        ids = [i for part in rendered.split(SEGMENT_BREAK) if part
               for i in self.tok(part, add_special_tokens=False)["input_ids"]]
        if self.use_chat:
            return ids
        # the special tokens the tokenizer adds around the whole text (BOS, EOS), around the segments
        text = without_breaks(rendered)
        full = list(self.tok(text, add_special_tokens=True)["input_ids"])
        plain = list(self.tok(text, add_special_tokens=False)["input_ids"])
        head = next((k for k in range(len(full) - len(plain) + 1) if full[k : k + len(plain)] == plain), 0)
        return full[:head] + ids + full[head + len(plain):]

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(x) for x in self.tok(list(texts), add_special_tokens=False)["input_ids"]]

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        return self.tok.decode(ids[:max_tokens], skip_special_tokens=True)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text``'s tokens (offsets of a fast tokenizer; words otherwise)."""
        if not text:
            return []
        if not getattr(self.tok, "is_fast", False):
            from .base import word_spans

            return word_spans(text)
        offsets = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return [(int(a), int(b)) for a, b in offsets]

    def continuation_ids(self, rendered: str, choice: str) -> list[int]:
        """Token ids of ``choice`` as produced right after ``rendered`` (``""``: at the start of a turn)."""
        key = (without_breaks(rendered)[-48:], choice)
        ids = self._cont.get(key)
        if ids is None:
            ids = continuation(lambda t: list(self.tok(t, add_special_tokens=False)["input_ids"]), key[0], choice)
            self._cont[key] = ids
        return ids

    def token_text(self, token_id: int) -> str:
        """How a server spells one token in its log-prob replies (the decoded text)."""
        text = self._text.get(token_id)
        if text is None:
            text = self._text[token_id] = self.tok.decode([token_id], skip_special_tokens=False)
        return text


def continuation(tokenize: Any, context: str, choice: str) -> list[int]:
    """Ids of ``choice`` after ``context`` given a ``tokenize(text) -> ids`` function.

    The context is tokenised with and without the choice; the extra ids are the choice's (a BOS
    token that ``tokenize`` adds cancels out). If the choice merges with the context's last token,
    the choice is tokenised on its own (after whatever ``tokenize("")`` gives, e.g. BOS).
    """
    ctx = list(tokenize(context))
    full = list(tokenize(context + choice))
    if full[: len(ctx)] == ctx and len(full) > len(ctx):
        ids = full[len(ctx):]
    else:
        base = list(tokenize("")) if context else ctx
        alone = list(tokenize(choice))
        ids = alone[len(base):] if alone[: len(base)] == base else alone
    if not ids:
        raise BackendError(f"choice {choice!r} tokenises to nothing")
    return ids


class ServerTokenizer:
    """Token ids from the server itself when no local tokenizer is given.

    Probes, once, the tokenize endpoints of llama-cpp-python (``/extras/tokenize``), llama.cpp's
    ``llama-server`` and vLLM (``/tokenize``), and remembers the first that answers.
    """

    _SHAPES = (  # (path, body builder)
        ("extras/tokenize", lambda model, text: {"input": text}),
        ("tokenize", lambda model, text: {"content": text, "add_special": False}),
        ("tokenize", lambda model, text: {"model": model, "prompt": text, "add_special_tokens": False}),
    )

    def __init__(self, client: Any, root: str, model: str) -> None:
        self.client = client
        self.root = root.rstrip("/")
        self.model = model
        self._shape: int | None = None
        self._probed = False
        self._cont: dict[tuple[str, str], list[int]] = {}
        self._base: int | None = None

    @property
    def available(self) -> bool:
        if not self._probed:
            self._probed = True
            for i, (path, body) in enumerate(self._SHAPES):
                try:
                    reply = self.client.post(f"{self.root}/{path}", body(self.model, "Hello world"), retry=False)
                except BackendError:
                    continue
                if isinstance(reply, dict) and isinstance(reply.get("tokens"), list) and reply["tokens"]:
                    self._shape = i
                    log.info("server tokenizer: %s/%s", self.root, path)
                    break
            if self._shape is None:
                log.warning("the server at %s offers no tokenize endpoint; token counts are approximate", self.root)
        return self._shape is not None

    def tokenize(self, text: str) -> list[int]:
        if not self.available:
            raise BackendError("the server has no tokenize endpoint")
        path, body = self._SHAPES[self._shape]  # type: ignore[index]
        toks = self.client.post(f"{self.root}/{path}", body(self.model, text)).get("tokens")
        if not isinstance(toks, list):
            raise BackendError(f"the server's tokenize reply has no token list: {toks!r}")
        return [int(t["id"]) if isinstance(t, dict) else int(t) for t in toks]

    def count(self, texts: Sequence[str]) -> list[int]:
        if self._base is None:
            self._base = len(self.tokenize(""))  # e.g. a BOS token some servers always add
        return [max(0, len(self.tokenize(t)) - self._base) for t in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest word prefix of ``text`` within ``max_tokens`` (binary search over word counts)."""
        if self.count([text])[0] <= max_tokens:
            return text
        words = text.split()
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count([" ".join(words[:mid])])[0] <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def continuation_ids(self, context: str, choice: str) -> list[int]:
        key = (context[-48:], choice)
        ids = self._cont.get(key)
        if ids is None:
            ids = self._cont[key] = continuation(self.tokenize, key[0], choice)
        return ids


class LocalTokenizerMethods:
    """The tokenizer half of the backend protocol for a backend holding a :class:`LocalTokenizer` as ``tok``
    (listed before :class:`~rerankkit.backends.base.BackendBase` among the bases, so these win)."""

    tok: LocalTokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.tok.count(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.tok.truncate(text, max_tokens)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.tok.spans(text)
