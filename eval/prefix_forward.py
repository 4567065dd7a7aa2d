"""What a cached prefix saves one causal forward on this CPU, and the fixed cost of a forward.

The hf backend's prefix cache (``rerankkit/backends/prefix_cache.py``) runs a prompt whose first P tokens are
cached as a forward over its T - P new tokens with the P cached keys/values passed in. Issue 22's table (b)
found that setwise heapsort gains nothing from it (1.00x), though every setwise prompt of a query shares the
chat preamble, the instruction and the query (~60 tokens). This script separates the two possible reasons,
on SmolLM2-135M-Instruct and random token ids:

1. forward time against prompt length (no cache): the fixed cost per forward and the cost per token, by a
   least-squares line — what any saving of tokens can buy;
2. for a prompt of T tokens, the forward over T - P new tokens with P cached (as the backend calls it: a
   ``DynamicCache``, explicit position ids, no mask, ``logits_to_keep=1``), next to a plain forward over
   T - P tokens (what the new tokens cost without a past) and over all T; with transformers' ``sdpa`` (an
   explicit lower-right causal mask, which SDPA cannot skip blocks of) and with :func:`register_causal_kernel`
   (the plain lower-right mask dropped, P zero queries prepended so SDPA's square causal kernel computes
   exactly that pattern, the last T - P rows kept) — a candidate for the backend, measured here first;
3. B prompts of T tokens in one batched forward against B forwards of one (what batching independent
   prompts, e.g. the sift-downs of one heap level, can buy).

Usage (alone on the machine; ~1 min):

    PYTHONPATH=$PWD:$PWD/eval HF_HUB_OFFLINE=1 python eval/prefix_forward.py --tokens 368 --dtype bf16 --threads 2
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

from forward_profile import best_ms, load_smollm2, probe_parser

CAUSAL_KERNEL = "causal_kernel_probe"


def register_causal_kernel() -> str:
    """An attention implementation equal to ``sdpa`` except over cached keys/values with the plain causal
    pattern, which it runs through SDPA's causal kernel over zero-padded queries; returns its name."""
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def lower_right(mask: Any) -> bool:
        if mask.dtype != torch.bool or mask.ndim != 4 or mask.shape[-2] > mask.shape[-1]:
            return False
        q, kv = mask.shape[-2:]
        return bool((mask == torch.ones(q, kv, dtype=torch.bool).tril(kv - q)).all())

    def mask_fn(*args: Any, **kwargs: Any) -> Any:
        mask = sdpa_mask(*args, **kwargs)
        return None if mask is not None and lower_right(mask) else mask

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        q, kv = query.shape[2], key.shape[2]
        if attention_mask is None and 1 < q < kv:
            pad = query.new_zeros(query.shape[0], query.shape[1], kv - q, query.shape[3])
            out, w = sdpa_attention_forward(module, torch.cat([pad, query], 2), key, value, None, **kwargs)
            return out[:, kv - q:], w
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(CAUSAL_KERNEL, attention)
    AttentionMaskInterface.register(CAUSAL_KERNEL, mask_fn)
    return CAUSAL_KERNEL


def main() -> None:
    ap = probe_parser("eval/results/prefix_forward.json")
    ap.add_argument("--past", default="32,64,128,192", help="comma-separated cached prefix lengths")
    ap.add_argument("--lengths", default="16,64,128,256,368,512", help="prompt lengths for the cost line")
    ap.add_argument("--batch", default="2,3", help="comma-separated batch sizes of T-token prompts")
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers import DynamicCache

    model = load_smollm2(args.dtype, args.threads)
    T = args.tokens
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    past = [int(x) for x in args.past.split(",")]
    lengths = [int(n) for n in args.lengths.split(",")]
    batches = [int(b) for b in args.batch.split(",")]
    causal_kernel = register_causal_kernel()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, model.config.vocab_size - 100, (1, max(T, *lengths)), generator=gen)

    def plain(n: int, rows: Any = None) -> Any:
        def run() -> Any:
            model.set_attn_implementation("sdpa")  # every arm switches, so all pay the same for it
            return model(input_ids=ids[:, :n] if rows is None else rows, logits_to_keep=1, use_cache=False).logits
        return run

    def cached_layers(p: int) -> list[tuple[Any, Any]]:
        cache = DynamicCache()
        model(input_ids=ids[:, :p], use_cache=True, **{cache_arg: cache})
        return [(layer.keys, layer.values) for layer in cache.layers]

    def with_past(p: int, attention: str = "sdpa") -> Any:
        layers = cached_layers(p)

        def run() -> Any:
            model.set_attn_implementation(attention)
            cache = DynamicCache()  # fresh each call, as the backend builds one per packed forward
            for i, (k, v) in enumerate(layers):
                cache.update(k, v, i)
            return model(input_ids=ids[:, p:T], position_ids=torch.arange(p, T)[None], logits_to_keep=1,
                         use_cache=True, **{cache_arg: cache}).logits
        return run

    report: dict[str, Any] = {"tokens": T, "dtype": args.dtype, "threads": args.threads,
                              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    with torch.inference_mode():
        line = best_ms({str(n): plain(n) for n in lengths}, args.rounds, 4)
        best = {n: min(line[str(n)]) for n in lengths}
        slope, fixed = np.polyfit(lengths, [best[n] for n in lengths], 1)
        report["by_length_ms"] = best
        report["fixed_ms"] = round(float(fixed), 1)
        report["ms_per_token"] = round(float(slope), 3)
        full = plain(T)()[0, -1].float()
        arms: dict[str, Any] = {f"all {T} new": plain(T)}
        for p in past:
            arms[f"{p} cached + {T - p} new"] = with_past(p)
            arms[f"{p} cached + {T - p} new, causal kernel"] = with_past(p, causal_kernel)
            arms[f"{T - p} new, no past"] = plain(T - p)
            for name in (f"{p} cached + {T - p} new", f"{p} cached + {T - p} new, causal kernel"):
                diff = float((arms[name]()[0, -1].float() - full).abs().max())
                report.setdefault("max_abs_logit_diff", {})[name] = diff
            model.set_attn_implementation("sdpa")
        for b in batches:
            rows = torch.randint(100, model.config.vocab_size - 100, (b, T), generator=gen)
            arms[f"batch of {b} x {T}"] = plain(T, rows)
        times = best_ms(arms, args.rounds, 4)
        model.set_attn_implementation("sdpa")
        base = min(times[f"all {T} new"])
        for b in batches:
            report.setdefault("batch_speedup_vs_one_by_one", {})[b] = round(b * base / min(times[f"batch of {b} x {T}"]), 3)
        report["ms"] = {k: {"best": round(min(v), 1), "speedup_vs_all_new": round(base / min(v), 3)}
                        for k, v in times.items()}
        with torch.profiler.profile() as prof:
            with_past(past[len(past) // 2])()
        report["attention_ops_with_past"] = sorted({e.key for e in prof.key_averages() if "attention" in e.key
                                                    or "softmax" in e.key or "bmm" in e.key})
        with torch.profiler.profile() as prof:
            plain(T)()
        report["attention_ops_plain"] = sorted({e.key for e in prof.key_averages() if "attention" in e.key
                                                or "softmax" in e.key or "bmm" in e.key})
    print(json.dumps(report, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
