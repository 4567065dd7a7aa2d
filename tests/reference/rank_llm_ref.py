"""castorini/rank_llm's listwise code, run on a CPU machine as an oracle for side-by-side checks.

``pip install --no-deps rank-llm==0.25.7 dacite`` (``scripts/setup`` does it; ftfy comes with rerankkit).
rank_llm imports vLLM (CUDA only) at module level and its package ``__init__`` files import every
reranker it has (some fail with transformers 5), so this module:

- imports only the listwise modules, under package objects that skip those ``__init__`` files;
- gives that import a stand-in ``vllm`` module (removed from ``sys.modules`` right after), whose
  ``LLM`` is an engine of ours: :class:`ScriptedEngine` (answers a function of the prompt text) or
  :class:`TransformersEngine` (greedy decoding with a transformers model, honouring vLLM's
  ``min_tokens`` / ``max_tokens`` / ``logprobs`` sampling parameters).

Everything rank_llm computes around the engine (prompts, budget loop, windows, parsing, FIRST's
log-prob reading) is its own code. Nothing here is copied into rerankkit.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

RANK_LLM_VERSION = "0.25.7"
_PACKAGES = ("rank_llm", "rank_llm.rerank", "rank_llm.rerank.listwise", "rank_llm.rerank.pairwise",
             "rank_llm.rerank.pointwise")
_ENGINES: dict[str, Any] = {}


@dataclass
class Logprob:
    """vLLM's ``Logprob``: what ``output.outputs[0].logprobs[step][token_id]`` holds."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None = None


@dataclass
class RequestOutput:
    prompt: str
    outputs: list[CompletionOutput] = field(default_factory=list)


class SamplingParams:
    """vLLM's ``SamplingParams`` as rank_llm builds it (min_tokens, max_tokens, temperature, logprobs)."""

    def __init__(self, **kwargs: Any) -> None:
        self.min_tokens = int(kwargs.pop("min_tokens", 0) or 0)
        self.max_tokens = int(kwargs.pop("max_tokens", 16))
        self.temperature = float(kwargs.pop("temperature", 1.0))
        self.logprobs = kwargs.pop("logprobs", None)
        self.extra = kwargs


class _LLM:
    """``vllm.LLM(model=NAME, ...)`` returns the engine registered under NAME with :func:`reranker`."""

    def __new__(cls, model: str, **_: Any):
        return _ENGINES[model]


def _vllm_stub() -> dict[str, types.ModuleType]:
    vllm = types.ModuleType("vllm")
    outputs = types.ModuleType("vllm.outputs")
    vllm.LLM, vllm.SamplingParams, vllm.RequestOutput = _LLM, SamplingParams, RequestOutput
    outputs.RequestOutput = RequestOutput
    vllm.outputs = outputs
    return {"vllm": vllm, "vllm.outputs": outputs}


@lru_cache(maxsize=1)
def load() -> types.SimpleNamespace:
    """rank_llm's listwise modules; ImportError when rank-llm (or dacite / ftfy) is not installed."""
    spec = importlib.util.find_spec("rank_llm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("rank-llm is not installed (pip install --no-deps rank-llm==0.25.7 dacite)")
    root = Path(spec.submodule_search_locations[0])
    from importlib.metadata import version

    if version("rank-llm") != RANK_LLM_VERSION:
        raise ImportError(f"rank-llm {RANK_LLM_VERSION} is the reference, found {version('rank-llm')}")
    for name in _PACKAGES:  # package objects without their __init__ (which imports every reranker)
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            pkg.__package__ = name
            sys.modules[name] = pkg
    stub = _vllm_stub()
    saved = {k: sys.modules.get(k) for k in stub}
    sys.modules.update(stub)
    try:
        data = importlib.import_module("rank_llm.data")
        os_llm = importlib.import_module("rank_llm.rerank.listwise.rank_listwise_os_llm")
        handler = importlib.import_module("rank_llm.rerank.listwise.listwise_inference_handler")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return types.SimpleNamespace(data=data, RankListwiseOSLLM=os_llm.RankListwiseOSLLM, handler=handler,
                                 templates=root / "rerank" / "prompt_templates", root=root)


TEMPLATES = {"rank-zephyr": "rank_zephyr_template.yaml", "rank-gpt": "rank_gpt_template.yaml",
             "first-rankllm": "rank_zephyr_alpha_template.yaml"}


def reranker(engine: Any, template: str = "rank-zephyr", *, window: int = 20, stride: int = 10,
             context_size: int = 4096, use_logits: bool = False) -> Any:
    """rank_llm's ``RankListwiseOSLLM`` over ``engine`` with one of rerankkit's template names."""
    rl = load()
    name = f"engine-{id(engine)}"
    _ENGINES[name] = engine
    alpha = template == "first-rankllm"
    try:
        return rl.RankListwiseOSLLM(model=name, context_size=context_size, device="cpu", window_size=window,
                                    stride=stride, use_alpha=alpha, use_logits=use_logits,
                                    prompt_template_path=str(rl.templates / TEMPLATES[template]))
    finally:
        del _ENGINES[name]


def request(query: str, docs: Sequence[Any], qid: str = "q") -> Any:
    """A rank_llm ``Request`` for rerankkit ``Doc``s (``title`` kept when there is one)."""
    d = load().data
    cands = []
    for i, doc in enumerate(docs):
        body = {"text": doc.text}
        if doc.title:
            body["title"] = doc.title
        cands.append(d.Candidate(docid=doc.docid, score=float(len(docs) - i), doc=body))
    return d.Request(query=d.Query(text=query, qid=qid), candidates=cands)


def result(req: Any) -> Any:
    d = load().data
    import copy

    return d.Result(query=copy.deepcopy(req.query), candidates=copy.deepcopy(req.candidates), invocations_history=[])


def order_after(rr: Any, text: str, n: int) -> list[int]:
    """Window positions after rank_llm's ``receive_permutation`` of ``text`` on a window of ``n``."""
    d = load().data
    res = d.Result(query=d.Query(text="q", qid="q"),
                   candidates=[d.Candidate(docid=str(i), score=0.0, doc={"text": str(i)}) for i in range(n)],
                   invocations_history=[])
    rr.receive_permutation(res, text, 0, n)
    return [int(c.docid) for c in res.candidates]


class ScriptedEngine:
    """Answers each prompt with ``respond(prompt) -> text`` (and records the prompts)."""

    def __init__(self, tokenizer: Any, respond: Callable[[str], str] = lambda p: "") -> None:
        self.tokenizer = tokenizer
        self.respond = respond
        self.prompts: list[str] = []

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, prompts: Sequence[str], sampling_params: SamplingParams, **_: Any) -> list[RequestOutput]:
        out = []
        for p in prompts:
            self.prompts.append(p)
            text = self.respond(p)
            out.append(RequestOutput(p, [CompletionOutput(text, self.tokenizer.encode(text, add_special_tokens=False))]))
        return out


class TransformersEngine:
    """Greedy decoding with a transformers causal LM, as vLLM would run rank_llm's requests.

    ``min_tokens`` blocks the end-of-sequence token until that many tokens are out (vLLM's rule);
    ``logprobs=k`` returns, per generated token, the top-k log-probs of the full distribution plus the
    chosen token, decoded one token at a time. ``first_token`` forces the first generated token
    (FIRST: rank_llm assumes the model writes ``[`` and reads the second position).
    """

    def __init__(self, model: Any, tokenizer: Any, first_token: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.first_ids = tokenizer.encode(first_token, add_special_tokens=False) if first_token else []
        self.prompts: list[str] = []
        self.texts: list[str] = []  # the generated text, per prompt
        self.lengths: list[int] = []  # generated tokens, per prompt
        self.first_greedy: list[str] = []  # the token the model itself would write first, per prompt

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, prompts: Sequence[str], sampling_params: SamplingParams, **_: Any) -> list[RequestOutput]:
        return [self._one(p, sampling_params) for p in prompts]

    def _one(self, prompt: str, sp: SamplingParams) -> RequestOutput:
        import torch

        self.prompts.append(prompt)
        tok = self.tokenizer
        ids = torch.tensor([tok.encode(prompt)])  # vLLM encodes a text prompt with the tokenizer's specials
        forced = self.first_ids

        def allowed(_batch: int, seq: Any) -> list[int]:
            step = seq.shape[-1] - ids.shape[1]
            return [forced[step]] if step < len(forced) else list(range(self.model.config.vocab_size))

        with torch.inference_mode():
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=sp.max_tokens,
                min_new_tokens=sp.min_tokens, output_logits=True, return_dict_in_generate=True,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                prefix_allowed_tokens_fn=allowed if forced else None)
        new = [int(t) for t in out.sequences[0, ids.shape[1]:]]
        raw = [torch.log_softmax(step[0].float(), dim=-1) for step in out.logits]  # vLLM: raw log-probs
        self.first_greedy.append(tok.decode([int(torch.argmax(raw[0]))]) if raw else "")
        steps: list[dict[int, Logprob]] | None = None
        if sp.logprobs:
            steps = []
            for logp, tid in zip(raw, new):
                top = torch.topk(logp, int(sp.logprobs))
                d = {int(t): Logprob(float(v), r + 1, tok.decode([int(t)]))
                     for r, (v, t) in enumerate(zip(top.values, top.indices))}
                d.setdefault(tid, Logprob(float(logp[tid]), None, tok.decode([tid])))
                steps.append(d)
        text = tok.decode(new, skip_special_tokens=True)
        self.texts.append(text)
        self.lengths.append(len(new))
        return RequestOutput(prompt, [CompletionOutput(text, new, steps)])
