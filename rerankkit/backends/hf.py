"""transformers backend: causal and seq2seq LMs (and encoders for EMBED) on CPU or CUDA.

Speed comes from: length-sorted batches (little padding), logits for the last position only when
scoring single-token answers, the prefix cache (causal scoring computes only the prompt tokens no recent
prompt shared: :mod:`.prefix_cache`), ``torch.inference_mode``, and bf16 where the CPU or GPU has it. Left padding with
explicit position ids makes a batched prompt score the same as the prompt alone.
"""

from __future__ import annotations

import inspect
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import BackendError, ConfigError
from ..models import materialize_gguf, resolve_adapter, resolve_model
from ..options import check_value, option
from .base import (
    SEGMENT_BREAK,
    BackendBase,
    Capability,
    Generation,
    Prompt,
    Sampling,
    SamplingArg,
    ScoreRequest,
    sampling_list,
)
from .choice_head import ChoiceHead
from .precision import DTYPE_NAMES, resolve_dtype
from .prefix_cache import PrefixKV, pad_allowed
from .tokenizing import LocalTokenizer, LocalTokenizerMethods

log = logging.getLogger(__name__)
DECODER_MARK = "\n--- decoder ---\n"  # between a seq2seq model's encoder and decoder text in render()


@dataclass(frozen=True)
class HFOptions:
    """The hf backend's options."""

    dtype: str = option("auto", help="weights: fp32 | bf16 | fp16 | auto (bf16 on CUDA and on CPUs with native bf16, "
                                     "AMX or AVX512-BF16; fp32 on other CPUs; see rerankkit doctor)")
    device: str = option("auto", help="auto | cpu | cuda | cuda:I")
    batch_size: int = option(16, bounds=(1, None), help="prompts per forward pass")
    max_batch_tokens: int = option(32768, bounds=(1, None), help="padded tokens per forward pass")
    max_padding: float = option(1.0, bounds=(0.0, 1.0),
                                help="largest share of padding positions in one forward pass, 0-1 (1: no limit)")
    max_length: int | None = option(None, bounds=(1, None),
                                    help="prompt tokens; longer prompts are cut from the left (none: no cut)")
    chat_template: bool = option(True, help="apply the tokenizer's chat template when it has one")
    chat_template_kwargs: dict[str, Any] | None = option(
        None, help="extra arguments for the chat template, e.g. {enable_thinking: false} for Qwen3")
    pooling: str = option("", choices=("", "last", "mean", "cls"),
                          help="EMBED pooling (empty: a sentence-transformers folder's own, else last for causal "
                               "models and mean for encoders)")
    adapter: str | None = option(None, help="a PEFT/LoRA adapter folder, or packaged:NAME (shipped in rerankkit)")
    merge_adapter: bool = option(True, help="merge the adapter into the weights (no per-call cost)")
    gguf_file: str | None = option(None, help="the GGUF file inside a hub repository or folder")
    revision: str | None = option(None, help="hub revision (branch, tag or commit)")
    trust_remote_code: bool = option(False, help="run the model repository's own code")
    threads: int | None = option(None, bounds=(0, None), help="torch CPU threads (none or 0: torch's default)")
    prefix_cache: bool = option(True, help="causal scoring computes only the prompt tokens no recent prompt shared "
                                           "(PRP and setwise prompts repeat the query and a passage): packed "
                                           "forwards over cached keys/values; off: plain padded batches")
    prefix_cache_tokens: int = option(8192, bounds=(64, None), help="prompt tokens whose keys/values the prefix cache "
                                                                    "keeps (least recently used go first)")
    pack_tokens: int = option(1024, bounds=(1, None), help="new tokens per packed forward of the prefix cache "
                                                           "(its attention is dense over the pack: keep it small)")
    fp32_choices: bool = option(True, help="a bf16/fp16 model's answer-choice logits (yes/no, labels) recomputed in "
                                           "fp32 from its output head's input: bf16 logits step by 0.06 near 15, "
                                           "which ties and swaps close scores; off: the model's own logits")
    pad_multiple: int | None = option(None, bounds=(1, None),
                                      help="round every forward's token length up to a multiple of this, with "
                                           "masked filler, so a few shapes recur (a new shape costs more on "
                                           "CPU); none: 16 for bf16/fp16 on CPU, else 1 (no rounding)")

    def validate(self) -> None:
        if str(self.dtype).lower() not in DTYPE_NAMES:
            raise ConfigError(f"hf dtype must be one of {', '.join(DTYPE_NAMES)}, not {self.dtype!r}")


class HFBackend(LocalTokenizerMethods, BackendBase):
    """A model loaded with transformers from a hub id, a local folder, a GGUF file or ``packaged:NAME``.

    Options: :class:`HFOptions`. A sentence-transformers folder (``modules.json``) sets the EMBED defaults
    as sentence-transformers would: its ``max_seq_length`` and pooling mode.
    """

    backend_name = "hf"
    Options = HFOptions
    capabilities = Capability.GENERATE | Capability.SCORE | Capability.EMBED | Capability.REPRESENT

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        o: HFOptions = self.opts
        self.torch = torch = require("torch", "hf", "the transformers backend")
        transformers = require("transformers", "hf", "the transformers backend")
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if o.device == "auto" else o.device
        choice = resolve_dtype(o.dtype, self.device, torch)
        name = choice.name
        self.dtype_name = name
        self.dtype_reason = choice.reason
        if o.threads:
            torch.set_num_threads(o.threads)
        self.batch_size = o.batch_size
        self.max_batch_tokens = o.max_batch_tokens
        self.max_padding = o.max_padding
        self.max_length = o.max_length
        self.use_chat = o.chat_template
        self.chat_kwargs = dict(o.chat_template_kwargs or {})
        self.adapter = o.adapter or None
        self.merge_adapter = o.merge_adapter
        res = resolve_model(model, o.gguf_file)
        path = str(materialize_gguf(res.path, res.gguf_file)) if res.gguf_file else res.path
        self.path = path
        kw: dict[str, Any] = {"revision": o.revision, "trust_remote_code": o.trust_remote_code}
        try:
            config = transformers.AutoConfig.from_pretrained(path, **kw)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, **kw)
        except OSError as exc:
            raise BackendError(f"cannot load model {model!r} from {path!r}: {exc}") from None
        self.kind = _model_kind(config)
        auto = {"causal": transformers.AutoModelForCausalLM, "seq2seq": transformers.AutoModelForSeq2SeqLM,
                "encoder": transformers.AutoModel}[self.kind]
        self.model = auto.from_pretrained(path, dtype=getattr(torch, name), **kw)
        if self.adapter:
            peft = require("peft", "peft", "LoRA adapters")
            with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 deprecates
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                self.model = peft.PeftModel.from_pretrained(self.model, resolve_adapter(self.adapter))
            if self.merge_adapter:  # W + BA once, instead of two extra matmuls per layer on every call
                self.model = self.model.merge_and_unload()
        self.model.to(self.device).eval()
        st_len, st_pool = _sentence_transformers_config(path) if self.kind == "encoder" else (None, None)
        self.embed_max_length = st_len  # sentence-transformers' max_seq_length, when the folder has one
        self.pooling = o.pooling or st_pool or ("last" if self.kind == "causal" else "mean")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.narrow({
            "causal": Capability.GENERATE | Capability.SCORE | Capability.EMBED | Capability.REPRESENT,
            "seq2seq": Capability.GENERATE | Capability.SCORE,
            "encoder": Capability.EMBED,
        }[self.kind])
        # rendering, counting, truncating and answer-choice ids: the same helper as the server backends
        self.tok = LocalTokenizer(self.tokenizer, self.use_chat and self.kind != "seq2seq", self.chat_kwargs)
        why_not = _packing_unsupported(self.model, self.kind, bool(self.adapter and not self.merge_adapter))
        self.prefix: PrefixKV | None = None
        if o.prefix_cache and why_not:
            log.info("hf backend: prefix cache off (%s)", why_not)
        elif o.prefix_cache:
            self.prefix = PrefixKV(o.prefix_cache_tokens)
        self.pack_tokens = o.pack_tokens
        self.choice_head = ChoiceHead.attach(self.model, torch) if o.fp32_choices and self.kind != "encoder" else None
        self.pad_multiple = o.pad_multiple or default_pad_multiple(self.device, name)
        # the forward's keyword for a KV cache: ``cache`` from transformers 5.x, ``past_key_values`` before
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._prefix_lock = threading.Lock()
        log.info("hf backend: %s (%s, %s: %s, %s)", model, self.kind, self.dtype_name, self.dtype_reason, self.device)

    # -- text ---------------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        out = {"dtype": self.dtype_name, "chat_template": self.use_chat, "max_length": self.max_length,
               "pooling": self.pooling, "adapter": self.adapter, "kind": self.kind}
        if self.adapter and not self.merge_adapter:
            out["merge_adapter"] = False
        if self.chat_kwargs:
            out["chat_template_kwargs"] = dict(self.chat_kwargs)
        return out

    def render(self, prompt: Prompt) -> str:
        """The text the model sees. A seq2seq model's encoder reads the messages and its decoder starts with
        the assistant prefix: both are shown, the decoder's after :data:`DECODER_MARK`."""
        if self.kind != "seq2seq" or not prompt.prefix:
            return self.tok.render(prompt)
        parts = self.render_inputs(prompt)
        return parts["encoder"] + DECODER_MARK + parts["decoder"]

    def render_inputs(self, prompt: Prompt) -> dict[str, str]:
        """What each part of the model reads: ``{"input": text}``, or for a seq2seq model
        ``{"encoder": text, "decoder": its start token and the assistant prefix}``."""
        if self.kind != "seq2seq":
            return {"input": self.tok.render(prompt)}
        dec = self.decoder_ids(prompt.prefix)
        return {"encoder": self.tok.render(Prompt(prompt.messages)),
                "decoder": self.tokenizer.decode(dec, skip_special_tokens=False)}

    def decoder_ids(self, prefix: str) -> list[int]:
        """A seq2seq decoder's input: the start token, then ``prefix`` (the assistant prefix) as tokens."""
        start = self.model.config.decoder_start_token_id
        if start is None:
            start = self.tokenizer.pad_token_id
        ids = list(self.tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else []
        return [int(start), *ids]

    def encode(self, text: str) -> list[int]:
        ids = self.tok.encode(text) if SEGMENT_BREAK in text else \
            self.tokenizer(text, add_special_tokens=not self.tok.use_chat)["input_ids"] or [self._filler_token()]
        if self.max_length and len(ids) > self.max_length:
            ids = ids[-self.max_length :]
            self.usage.add(truncated=1)  # counted, as every backend counts prompts cut to fit
        return list(ids)

    def context_length(self) -> int:
        """The longest input the model accepts (config, else tokenizer, else 2048)."""
        cfg = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
            v = getattr(cfg, name, None)
            if isinstance(v, int) and 0 < v < 10_000_000:
                return v
        v = getattr(self.tokenizer, "model_max_length", None)
        return v if isinstance(v, int) and 0 < v < 10_000_000 else 2048

    def max_input_tokens(self) -> int | None:
        """What one input may hold: ``max_length``, else (encoders) the embedding limit, else the context."""
        return self.max_length or (self.embed_max_length if self.kind == "encoder" else None) or self.context_length()

    def continuation_ids(self, rendered: str, choice: str) -> list[int]:
        """Token ids of ``choice`` as the model would produce it right after ``rendered`` (for a seq2seq
        model: right after the decoder's prefix, since its answer continues the decoder, not the encoder)."""
        return self.tok.continuation_ids(rendered, choice)

    # -- batching -----------------------------------------------------------------------------
    def _batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        return length_batches(lengths, self.batch_size, self.max_batch_tokens, self.max_padding)

    def _width(self, longest: int) -> int:
        """A batch's padded length: ``longest`` rounded up to :attr:`pad_multiple`, never past the context."""
        return max(longest, min(round_up(longest, self.pad_multiple), self.context_length()))

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        torch = self.torch
        width = self._width(max(len(s) for s in seqs))
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _causal_forward(self, seqs: Sequence[Sequence[int]], keep: int, hidden: bool = False) -> Any:
        ids, mask, pos = self._left_pad(seqs)
        return self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep,
                          output_hidden_states=hidden, use_cache=False)

    # -- SCORE --------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if not requests:
            return []
        torch = self.torch
        if self.kind == "seq2seq":  # the encoder reads the messages, the decoder starts with the prefix
            rendered = [self.tok.render(Prompt(r.prompt.messages)) for r in requests]
            contexts = [r.prompt.prefix for r in requests]
            decs = [self.decoder_ids(r.prompt.prefix)[1:] for r in requests]
        else:
            rendered = contexts = [self.render(r.prompt) for r in requests]
            decs = [[] for _ in requests]
        prompts = [self.encode(t) for t in rendered]
        conts = [[self.continuation_ids(t, c) for c in r.choices] for t, r in zip(contexts, requests)]
        out = [np.zeros(len(r.choices), dtype=np.float64) for r in requests]
        # single-token choices come from one next-token distribution per prompt (last position only);
        # only multi-token choices need teacher forcing over their tokens
        multi = [(i, j) for i, cs in enumerate(conts) for j, c in enumerate(cs) if len(c) > 1]
        with torch.inference_mode():
            needs_next = [i for i, cs in enumerate(conts) if any(len(c) == 1 for c in cs)]
            for batch in self._batches([len(prompts[i]) for i in needs_next]):
                idx = [needs_next[b] for b in batch]
                ids = sorted({c[0] for i in idx for c in conts[i] if len(c) == 1})
                logp = self._next_token_logprobs([prompts[i] for i in idx], [decs[i] for i in idx], ids)
                for row, i in enumerate(idx):
                    k = requests[i].top_k
                    kth = float(np.partition(logp[row], -k)[-k]) if k and k < logp.shape[1] else -np.inf
                    for j, c in enumerate(conts[i]):
                        if len(c) == 1:
                            v = float(logp[row, c[0]])
                            out[i][j] = v if v >= kth else -np.inf
            for batch in self._batches([len(prompts[i]) + len(conts[i][j]) for i, j in multi]):
                items = [multi[b] for b in batch]
                vals = self._continuation_logprobs([prompts[i] for i, _ in items], [conts[i][j] for i, j in items],
                                                   [decs[i] for i, _ in items])
                for (i, j), v in zip(items, vals):
                    out[i][j] = v
        self.usage.add(len(requests), sum(len(p) for p in prompts))
        return out

    def _next_token_logprobs(self, seqs: list[list[int]], decs: list[list[int]], ids: Sequence[int] = ()) -> np.ndarray:
        """Next-token log-probs per row; ``decs``: a seq2seq decoder's prefix ids (after its start token); ``ids``:
        the tokens whose logits :class:`.ChoiceHead` recomputes in fp32."""
        torch = self.torch
        if self.kind == "seq2seq":
            logits = self._seq2seq_logits(seqs, decs)
            at = (torch.arange(len(decs)), torch.tensor([len(d) for d in decs]))
            logits = self._fp32_rows(logits[at], lambda h: h[at], ids)
        elif self.prefix is not None:
            logits = self._packed_next_token_logits(seqs, ids)
        else:
            logits = self._fp32_rows(self._causal_forward(seqs, keep=1).logits[:, -1, :], lambda h: h[:, -1], ids)
        return torch.log_softmax(logits, dim=-1).cpu().numpy()

    def _fp32_rows(self, logits: Any, select: Any, ids: Sequence[int]) -> Any:
        """The last forward's logits rows in fp32, ``ids`` recomputed in fp32 where the model is bf16/fp16
        (``select`` picks the matching rows of the output head's input)."""
        if self.choice_head is None:
            return logits.float()
        return self.choice_head.refine(logits, select, ids)

    def _packed_next_token_logits(self, seqs: list[list[int]], ids: Sequence[int] = ()) -> Any:
        """Next-token logits per prompt through the prefix cache: groups of at most ``pack_tokens`` new tokens,
        one packed forward each (see :mod:`.prefix_cache`)."""
        rows: list[Any] = [None] * len(seqs)
        with self._prefix_lock:
            new = [self.prefix.new_tokens(s) for s in seqs]
            # a prompt with more new tokens than a pack holds runs alone, as a plain causal forward: a masked
            # attention over thousands of tokens costs more than the prefix saves (one FIRST window: 0.7x)
            long = [i for i, n in enumerate(new) if n > self.pack_tokens]
            if long:
                logits = self._causal_forward([seqs[i] for i in long], keep=1).logits[:, -1, :]
                logits = self._fp32_rows(logits, lambda h: h[:, -1], ids)
                for r, i in enumerate(long):
                    rows[i] = logits[r]
            group: list[int] = []
            size = 0
            for i, n in enumerate(new):
                if n > self.pack_tokens:
                    continue
                if group and size + n > self.pack_tokens:
                    self._packed_forward(seqs, group, rows, ids)
                    group, size = [], 0
                group.append(i)
                size += n
            if group:
                self._packed_forward(seqs, group, rows, ids)
        return self.torch.stack(rows)

    def _packed_forward(self, seqs: list[list[int]], group: list[int], rows: list[Any], ids: Sequence[int] = ()) -> None:
        torch = self.torch
        prefix = self.prefix
        pack = prefix.pack([seqs[i] for i in group])
        cache = _dynamic_cache()
        for layer, (k, v) in enumerate(prefix.past(pack, torch) or []):
            cache.update(k, v, layer)
        # filler after the new tokens rounds the forward's length (no real token attends to it)
        filler = round_up(len(pack.ids), self.pad_multiple) - len(pack.ids)
        ids = pack.ids + [self.tokenizer.pad_token_id] * filler
        positions = pack.positions + [0] * filler
        mask = None  # one prompt: its cached prefix then its new tokens, the model's own causal mask
        if len(group) > 1:
            allowed = torch.from_numpy(pad_allowed(pack.allowed, filler)).to(self.device)
            mask = torch.zeros(allowed.shape, dtype=self.model.dtype, device=self.device)
            mask.masked_fill_(~allowed, torch.finfo(self.model.dtype).min)
            mask = mask[None, None]
        dev = self.device
        res = self.model(input_ids=torch.tensor([ids], device=dev),
                         position_ids=torch.tensor([positions], device=dev),
                         attention_mask=mask, logits_to_keep=torch.tensor(pack.last, device=dev),
                         use_cache=True, **{self._cache_arg: cache})
        prefix.store(pack, _cache_layers(cache), torch)
        logits = self._fp32_rows(res.logits[0], lambda h: h[0], ids)
        for r, i in enumerate(group):
            rows[i] = logits[r]

    def _continuation_logprobs(self, prompts: list[list[int]], conts: list[list[int]],
                               decs: list[list[int]]) -> list[float]:
        """Sum of log p(continuation tokens) by teacher forcing, one row per (prompt, continuation)."""
        torch = self.torch
        if self.kind == "seq2seq":  # the decoder reads start, prefix, then the answer's tokens but its last
            logits = self._seq2seq_logits(prompts, [d + c[:-1] for d, c in zip(decs, conts)])
            lp = torch.log_softmax(logits.float(), dim=-1)
            return [float(sum(lp[r, len(d) + t, tok] for t, tok in enumerate(c)))
                    for r, (d, c) in enumerate(zip(decs, conts))]
        longest = max(len(c) for c in conts)
        seqs = [p + c for p, c in zip(prompts, conts)]
        logits = self._causal_forward(seqs, keep=longest + 1).logits  # positions predicting the last tokens
        lp = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for r, c in enumerate(conts):
            # the token at sequence position -len(c)+t is predicted by position -len(c)+t-1
            total = 0.0
            for t, tok in enumerate(c):
                total += float(lp[r, lp.shape[1] - 1 - len(c) + t, tok])
            out.append(total)
        return out

    def _seq2seq_logits(self, prompts: list[list[int]], dec: list[list[int]]) -> Any:
        """Decoder logits [rows, 1 + longest dec, vocab]: the encoder reads ``prompts`` (right-padded), the
        decoder its start token then ``dec`` (right-padded: a causal decoder never looks ahead)."""
        torch = self.torch
        ids, mask = self._right_pad(prompts)
        pad = self.tokenizer.pad_token_id
        start = self.decoder_ids("")[0]
        dw = 1 + max(len(d) for d in dec)
        dids = torch.full((len(prompts), dw), pad, dtype=torch.long)
        for r, d in enumerate(dec):
            dids[r, : 1 + len(d)] = torch.tensor([start, *d])
        return self.model(input_ids=ids, attention_mask=mask, decoder_input_ids=dids.to(self.device),
                          use_cache=False).logits

    # -- GENERATE -----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        """Greedy, or sampled (``sampling``): a sampled batch draws from one generator seeded by its
        requests' seeds, so the same requests in the same batches give the same texts (vLLM seeds
        each request on its own)."""
        if not prompts:
            return []
        torch = self.torch
        seq2seq = self.kind == "seq2seq"
        # a seq2seq model's encoder reads the messages; its decoder starts with the assistant prefix
        seqs = [self.encode(self.tok.render(Prompt(p.messages)) if seq2seq else self.render(p)) for p in prompts]
        samplings = sampling_list(sampling, len(prompts))
        groups: dict[tuple[int, ...], list[int]] = {}  # prompts that share a decoder prefix: no decoder padding
        for i, p in enumerate(prompts):
            groups.setdefault(tuple(self.decoder_ids(p.prefix)) if seq2seq else (), []).append(i)
        out: list[Generation | None] = [None] * len(prompts)
        with torch.inference_mode():
            for dec, members in groups.items():
                for part, decoding in self._generate_batches([seqs[i] for i in members],
                                                             [samplings[i] for i in members]):
                    batch = [members[b] for b in part]
                    new = self._generate_batch([seqs[i] for i in batch], list(dec), max_new_tokens, decoding)
                    for r, i in enumerate(batch):
                        toks = [t for t in new[r].tolist() if t != self.tokenizer.pad_token_id]
                        if self.tokenizer.eos_token_id in toks:
                            toks = toks[: toks.index(self.tokenizer.eos_token_id)]
                        out[i] = Generation(self._continuation_text(list(dec[1:]), toks), len(seqs[i]), len(toks))
        gens = [g for g in out if g is not None]
        self.usage.add(len(gens), sum(g.prompt_tokens for g in gens), sum(g.generated_tokens for g in gens))
        return gens

    def _generate_batches(self, seqs: Sequence[Sequence[int]],
                          samplings: Sequence[Sampling]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """Length-sorted batches of prompts that decode alike: (indices, ``model.generate`` kwargs).

        While the caller generates a sampled batch, torch's generators are seeded from the batch's
        request seeds (and restored after it), so the same batches give the same texts."""
        kinds: dict[tuple[float, float, int], list[int]] = {}
        for i, s in enumerate(samplings):
            kinds.setdefault((s.temperature, s.top_p, s.min_new_tokens), []).append(i)
        torch = self.torch
        dev = str(self.device)
        devices = ([int(dev.split(":")[1]) if ":" in dev else torch.cuda.current_device()]
                   if dev.startswith("cuda") else [])
        for (temperature, top_p, min_new), idx in kinds.items():
            at_least = {"min_new_tokens": min_new} if min_new else {}
            for batch in self._batches([len(seqs[i]) for i in idx]):
                rows = [idx[b] for b in batch]
                if temperature == 0.0:
                    yield rows, {"do_sample": False, **at_least}
                    continue
                # as vLLM's SamplingParams(temperature, top_p): no top-k cut, no repetition penalty
                decoding = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0,
                            "repetition_penalty": 1.0, **at_least}
                seeds = [samplings[i].seed for i in rows]
                with torch.random.fork_rng(devices=devices, enabled=None not in seeds):
                    if None not in seeds:
                        torch.manual_seed(_batch_seed(seeds))
                    yield rows, decoding

    def _generate_batch(self, seqs: list[list[int]], dec: list[int], max_new_tokens: int,
                        decoding: dict[str, Any]) -> Any:
        """New tokens for one batch (rows padded); ``dec``: a seq2seq decoder's start ids."""
        torch = self.torch
        if self.kind == "seq2seq":
            ids, mask = self._right_pad(seqs)
            start = torch.tensor([dec] * len(seqs), dtype=torch.long, device=self.device)
            gen = self.model.generate(input_ids=ids, attention_mask=mask, decoder_input_ids=start,
                                      max_new_tokens=max_new_tokens, **decoding)
            return gen[:, len(dec):]
        ids, mask, _ = self._left_pad(seqs)
        gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id, **decoding)
        return gen[:, ids.shape[1]:]

    def _continuation_text(self, prefix_ids: list[int], toks: list[int]) -> str:
        """The generated text as it reads after the decoder's prefix (a tokenizer may drop the space
        before a first token, as SentencePiece does: decoded after the prefix, it is kept)."""
        if not prefix_ids:
            return self.tokenizer.decode(toks, skip_special_tokens=True)
        head = self.tokenizer.decode(prefix_ids, skip_special_tokens=True)
        full = self.tokenizer.decode(prefix_ids + toks, skip_special_tokens=True)
        return full[len(head):] if full.startswith(head) else self.tokenizer.decode(toks, skip_special_tokens=True)

    # -- EMBED / REPRESENT --------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled, L2-normalised vectors. Texts are cut to the limit the way sentence-transformers cuts
        them (the closing special token kept); a text that already starts with the BOS token (a rendered
        chat prompt) gets no second one. Encoders are right-padded (absolute positions), causal models
        left-padded (last-token pooling)."""
        if not self.capabilities & Capability.EMBED:
            return self._lacks(Capability.EMBED)
        torch = self.torch
        limit = self.max_length or self.embed_max_length or self.context_length()
        seqs = [self._embed_ids(t, limit) for t in texts]
        out = [None] * len(seqs)
        with torch.inference_mode():
            for batch in self._batches([len(s) for s in seqs]):
                if self.kind == "causal":
                    ids, mask, pos = self._left_pad([seqs[i] for i in batch])
                    h = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True,
                                   logits_to_keep=1, use_cache=False).hidden_states[-1]
                else:
                    ids, mask = self._right_pad([seqs[i] for i in batch])
                    h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                vecs = _pool(torch, h.float(), mask, self.pooling)
                vecs = torch.nn.functional.normalize(vecs, dim=-1).cpu().numpy()
                for r, i in enumerate(batch):
                    out[i] = vecs[r]
        self.usage.add(len(seqs), sum(len(s) for s in seqs))
        return np.stack(out) if out else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    def _embed_ids(self, text: str, limit: int) -> list[int]:
        tok = self.tokenizer
        bos = tok.bos_token
        special = not (bos and self.kind == "causal" and text.startswith(bos))
        ids = list(tok(text, add_special_tokens=special, truncation=True, max_length=limit)["input_ids"])
        return ids or [self._filler_token()]  # an empty text still gets a vector

    def _right_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        torch = self.torch
        width = self._width(max(len(s) for s in seqs))
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        if self.kind != "causal":
            return self._lacks(Capability.REPRESENT)
        torch = self.torch
        seqs = [self.encode(self.render(p)) for p in prompts]
        hid: list[Any] = [None] * len(seqs)
        logit: list[Any] = [None] * len(seqs)
        with torch.inference_mode():
            for batch in self._batches([len(s) for s in seqs]):
                res = self._causal_forward([seqs[i] for i in batch], keep=1, hidden=True)
                h = res.hidden_states[-1][:, -1, :].float().cpu().numpy()
                lg = res.logits[:, -1, :].float().cpu().numpy()
                for r, i in enumerate(batch):
                    hid[i], logit[i] = h[r], lg[r]
        self.usage.add(len(seqs), sum(len(s) for s in seqs))
        return np.stack(hid), np.stack(logit)

    def _filler_token(self) -> int:
        t = self.tokenizer
        return next(i for i in (t.bos_token_id, t.cls_token_id, t.eos_token_id, t.pad_token_id) if i is not None)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


_PACKABLE = ("llama", "qwen2", "qwen3", "mistral", "phi3", "granite", "olmo2")


def _packing_unsupported(model: Any, kind: str, unmerged_adapter: bool) -> str:
    """Why the prefix cache cannot drive this model ('' when it can): it needs a causal model with full
    attention (no sliding window), a custom 4D attention mask (sdpa or eager) and index ``logits_to_keep``."""
    if kind != "causal":
        return f"a {kind} model"
    if unmerged_adapter:
        return "an unmerged adapter"
    cfg = model.config
    if getattr(cfg, "model_type", "") not in _PACKABLE:
        return f"model type {getattr(cfg, 'model_type', '?')!r} not checked for packed attention"
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return "sliding-window attention"
    if getattr(cfg, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
        return f"attention {cfg._attn_implementation!r} takes no custom mask"
    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" not in params:
        return "this transformers version has no logits_to_keep"
    return ""


def _dynamic_cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()


def _cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) per layer of a DynamicCache, across transformers versions."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def _pool(torch: Any, h: Any, mask: Any, how: str) -> Any:
    if how == "last":  # the last real token of every row (the last position when left-padded)
        last = mask.shape[1] - 1 - mask.flip(dims=[1]).float().argmax(dim=1)
        return h[torch.arange(h.shape[0]), last]
    if how == "cls":
        first = mask.float().argmax(dim=1)
        return h[torch.arange(h.shape[0]), first]
    if how == "mean":
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)
    raise ConfigError(f"pooling must be last, mean or cls, not {how!r}")


def _model_kind(config: Any) -> str:
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in archs or "LMHead" in archs or not archs and getattr(config, "model_type", "") in (
        "llama", "mistral", "qwen2", "qwen3", "gpt2", "gemma", "gemma2", "gemma3_text", "phi3"):
        return "causal"
    return "encoder"


def _sentence_transformers_config(path: str) -> tuple[int | None, str | None]:
    """(max_seq_length, pooling) from a local sentence-transformers folder, else (None, None)."""
    import contextlib
    import json
    from pathlib import Path

    folder = Path(path)
    if not (folder / "modules.json").is_file():
        return None, None
    length = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        length = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length")
    pooling = None
    try:
        for module in json.loads((folder / "modules.json").read_text()):
            if str(module.get("type", "")).endswith("Pooling"):
                cfg = json.loads((folder / module.get("path", "") / "config.json").read_text())
                pooling = next((name for key, name in (("pooling_mode_mean_tokens", "mean"),
                                                       ("pooling_mode_cls_token", "cls"),
                                                       ("pooling_mode_lasttoken", "last")) if cfg.get(key)), None)
    except (OSError, ValueError, TypeError):
        pass
    return (int(length) if isinstance(length, int) and length > 0 else None), pooling


def default_pad_multiple(device: str, dtype_name: str) -> int:
    """What ``pad_multiple=None`` means: 16 for bf16/fp16 on CPU, where a forward of a new length costs more
    than one of a length seen before (measured: docs/backends.md); 1 (no rounding) elsewhere."""
    return 16 if str(device) == "cpu" and dtype_name in ("bfloat16", "float16") else 1


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _batch_seed(seeds: Sequence[int | None]) -> int:
    """One seed for a batch of sampled requests, from theirs (independent of their order)."""
    import zlib

    return zlib.crc32(",".join(str(s) for s in sorted(int(x or 0) for x in seeds)).encode())


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int, max_padding: float = 1.0
                   ) -> Iterator[list[int]]:
    """Indices grouped into batches, longest first: at most ``batch_size`` rows, ``max_tokens`` padded
    positions and a ``max_padding`` share of padding per batch (a longer sequence always gets a batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batch: list[int] = []
    real = 0
    for i in order:
        longest = lengths[batch[0]] if batch else lengths[i]
        padded = longest * (len(batch) + 1)
        if batch and (len(batch) >= batch_size or padded > max_tokens or padded - real - lengths[i] > max_padding * padded):
            yield batch
            batch, real = [], 0
        batch.append(i)
        real += lengths[i]
    if batch:
        yield batch


def _max_padding(value: float | str) -> float:
    """The ``max_padding`` option read and checked as the declaration says."""
    return check_value(HFOptions, "max_padding", value, "hf")
