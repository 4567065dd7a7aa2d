"""GPU check: the hf backend on CUDA (bf16) and the vLLM backend when installed.

Runs with no download: models are random-weight models of real shapes (speed is a property of the
shape), built here with a small byte-level BPE tokenizer trained on the spot (or SmolLM2's, when the
packaged model is installed). Prints, and writes as JSON:

1. parity: a small random Llama scored pointwise on CPU fp32 vs CUDA fp32 vs CUDA bf16 (and vLLM):
   max |score difference| and Kendall tau of the rankings;
2. throughput: pointwise yes/no over ``--docs`` prompts of ``--tokens`` tokens per shape, hf bf16 on
   CUDA (and vLLM): prompts/s and tokens/s.

    python eval/gpu/check.py                          # on a CUDA machine: parity + 0.5B and 7B shapes
    python eval/gpu/check.py --shapes qwen2.5-0.5b --docs 100 --out eval/gpu/result.json
    python eval/gpu/check.py --smoke                  # tiny shapes on CPU (checks the script itself)
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# name: (hidden, layers, heads, kv heads, intermediate, vocab, tied embeddings, model type)
SHAPES: dict[str, tuple[int, int, int, int, int, int, bool, str]] = {
    "tiny": (64, 2, 4, 2, 128, 4096, True, "llama"),
    "parity-small": (256, 4, 8, 4, 704, 8192, True, "llama"),
    "qwen2.5-0.5b": (896, 24, 14, 2, 4864, 151936, True, "qwen2"),
    "qwen3-0.6b-like": (1024, 28, 16, 8, 3072, 151936, True, "qwen2"),
    "qwen2.5-7b": (3584, 28, 28, 4, 18944, 152064, False, "qwen2"),
    "llama-3-8b": (4096, 32, 32, 8, 14336, 128256, False, "llama"),
}
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
_TEXT = ("the of and to in is was for on that with as by at from passage query answer relevant document river city "
         "music protein energy history market water system model data light cell health law Yes No yes no Passage A B")
WORDS = tuple(_TEXT.split(" "))


def kendall_tau(a: list[str], b: list[str]) -> float:
    """Kendall tau between two orderings of the same items (1 = same order)."""
    pos = {x: i for i, x in enumerate(b)}
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1 if pos[a[i]] < pos[a[j]] else -1
    return s / (n * (n - 1) / 2) if n > 1 else 1.0


def build_tokenizer(which: str = "auto") -> Any:
    """SmolLM2's tokenizer when packaged (``auto``/``smollm2``), else a byte-level BPE trained here."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if which != "trained":
        try:
            from rerankkit.models import materialize_gguf, packaged_path

            p = packaged_path("smollm2-135m-instruct")
            return AutoTokenizer.from_pretrained(materialize_gguf(str(p.parent), p.name))
        except Exception:  # noqa: BLE001 - not installed on this machine: train one
            if which == "smollm2":
                raise
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = random.Random(0)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(2000)]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=2000, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")
    fast.chat_template = CHATML
    return fast


def build_model(shape: str, tok: Any, root: Path) -> Path:
    """A random-weight causal LM of ``shape`` saved (bf16) with ``tok`` under ``root``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    hidden, layers, heads, kv, inter, vocab, tied, kind = SHAPES[shape]
    cls = Qwen2Config if kind == "qwen2" else LlamaConfig
    cfg = cls(vocab_size=max(vocab, len(tok)), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
              num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=4096,
              tie_word_embeddings=tied, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
              bos_token_id=tok.bos_token_id)
    cfg.architectures = ["Qwen2ForCausalLM" if kind == "qwen2" else "LlamaForCausalLM"]
    torch.manual_seed(0)
    dtype = torch.float32 if shape in ("tiny", "parity-small") else torch.bfloat16
    device = "cuda" if torch.cuda.is_available() and dtype == torch.bfloat16 else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    out = root / shape
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def documents(n: int, tokens: int, seed: int = 0) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    words = max(8, int(tokens * 0.7))
    return "what is the history of the river city", [" ".join(rng.choice(WORDS[:-7]) for _ in range(words))
                                                      for _ in range(n)]


def rerank(backend_name: str, model: Path, query: str, docs: list[str], **opts: Any) -> dict[str, Any]:
    """Pointwise yes/no over ``docs`` after a warm-up: order, scores (input order), wall time, tokens."""
    from rerankkit import Reranker

    r = Reranker("pointwise-yes-no", model=str(model), backend=backend_name, **opts)
    r.rerank(query, docs[:2])  # warm-up: load, kernels, allocator
    before = r.backend.usage.snapshot()["prompt_tokens"]
    t = time.perf_counter()
    ranking = r.rerank(query, docs)
    wall = time.perf_counter() - t
    scores = {sd.docid: sd.score for sd in ranking.docs}
    return {"order": ranking.docids, "scores": [scores[str(i)] for i in range(len(docs))], "wall": wall,
            "tokens": r.backend.usage.snapshot()["prompt_tokens"] - before, "reranker": r}


def compare(run: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    return {"max_abs_diff_vs_cpu_fp32": round(max(abs(a - b) for a, b in zip(run["scores"], ref["scores"])), 6),
            "kendall_tau_vs_cpu_fp32": round(kendall_tau(run["order"], ref["order"]), 4)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="qwen2.5-0.5b,qwen2.5-7b", help=f"comma list of {', '.join(SHAPES)}")
    ap.add_argument("--docs", type=int, default=100, help="prompts per throughput measurement")
    ap.add_argument("--tokens", type=int, default=300, help="about this many tokens per document")
    ap.add_argument("--parity-docs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--tokenizer", choices=("auto", "smollm2", "trained"), default="auto")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, few docs, CPU allowed")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    import importlib.util

    import torch
    import transformers

    cuda = torch.cuda.is_available()
    has_vllm = importlib.util.find_spec("vllm") is not None and not args.no_vllm and cuda
    if not cuda and not args.smoke:
        sys.exit("no CUDA device: run with --smoke to check the script on CPU")
    shapes = ["tiny"] if args.smoke else [s for s in args.shapes.split(",") if s]
    n_docs, n_parity = (6, 6) if args.smoke else (args.docs, args.parity_docs)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
                              "torch": torch.__version__, "transformers": transformers.__version__,
                              "vllm": None, "parity": {}, "throughput": []}
    if has_vllm:
        import vllm

        report["vllm"] = vllm.__version__
    gpu = "cuda" if cuda else "cpu"
    with tempfile.TemporaryDirectory(prefix="rerankkit-gpu-check-") as tmp:
        root = Path(tmp)
        tok = build_tokenizer(args.tokenizer)
        small = build_model("tiny" if args.smoke else "parity-small", tok, root)
        query, docs = documents(n_parity, 120, seed=1)
        ref = rerank("hf", small, query, docs, device="cpu", dtype="fp32", batch_size=8)
        runs = {f"hf {gpu} fp32": dict(device=gpu, dtype="fp32"), f"hf {gpu} bf16": dict(device=gpu, dtype="bf16")}
        for label, opts in runs.items():
            report["parity"][label] = compare(rerank("hf", small, query, docs, batch_size=8, **opts), ref)
        if has_vllm:
            run = rerank("vllm", small, query, docs, dtype="fp32", gpu_memory_utilization=0.3)
            report["parity"]["vllm fp32"] = compare(run, ref)
            run["reranker"].close()
        for shape in shapes:
            path = build_model(shape, tok, root)
            query, docs = documents(n_docs, args.tokens, seed=2)
            engines = [("hf", dict(device=gpu, dtype="bf16" if cuda else "fp32", batch_size=args.batch_size,
                                   max_batch_tokens=args.batch_size * (args.tokens + 64)))]
            if has_vllm:
                engines.append(("vllm", dict(dtype="bf16", gpu_memory_utilization=0.85)))
            orders = {}
            for name, opts in engines:
                run = rerank(name, path, query, docs, **opts)
                orders[name] = run["order"]
                report["throughput"].append({"shape": shape, "backend": name, "docs": n_docs,
                                             "wall_s": round(run["wall"], 3),
                                             "prompts_per_s": round(n_docs / run["wall"], 1),
                                             "prompt_tokens_per_s": round(run["tokens"] / run["wall"])})
                run["reranker"].close()
                del run
                if cuda:
                    torch.cuda.empty_cache()
            if "vllm" in orders:
                report["throughput"][-1]["kendall_tau_vs_hf"] = kendall_tau(orders["vllm"], orders["hf"])
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
