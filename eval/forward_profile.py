"""Where one setwise-sized SmolLM2 forward spends its time on this CPU, and what cheaper forwards would buy.

Issue 22 asks rerankkit's setwise heapsort to run >= 1.3x llm-rankers in the same dtype; both run the same
transformers forward per prompt (rerankkit at 1.05x its forward floor), so only a cheaper forward closes the
gap. This script measures, on one prompt length (default 368 tokens, the mean setwise prompt of table (b)):

1. the operator profile of the transformers forward (torch.profiler, self CPU time);
2. interleaved timings of the transformers forward with and without an attention mask, with its RMSNorm
   replaced by ``F.rms_norm``, with gate/up fused into one GEMM, and of a lean hand-written forward (fused
   q/k/v and gate/up GEMMs, ``F.rms_norm``, SDPA ``is_causal``, no transformers module machinery) — the most
   that model surgery without compiled kernels could buy; each with its largest logit difference from the
   plain forward;
3. GEMM throughput at the model's shapes and the fused-elementwise kernels torch.compile makes.

Usage (alone on the machine; ~3 min):

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python eval/forward_profile.py --tokens 368 --dtype bf16 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_ms(fns: dict[str, Callable[[], Any]], rounds: int, reps: int) -> dict[str, list[float]]:
    """Per-call milliseconds of each function, rounds interleaved so machine load hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        for _ in range(3):
            f()
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            for _ in range(reps):
                f()
            out[k].append((time.perf_counter() - t) / reps * 1000)
    return out


def load_smollm2(dtype: str, threads: int) -> Any:
    """The packaged SmolLM2-135M-Instruct as a plain transformers model (bf16 or fp32), torch on ``threads``."""
    import torch
    from transformers import AutoModelForCausalLM

    from rerankkit.models import materialize_gguf, packaged_path

    torch.set_num_threads(threads)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    smol = packaged_path("smollm2-135m-instruct")
    return AutoModelForCausalLM.from_pretrained(materialize_gguf(str(smol.parent), smol.name), dtype=dt).eval()


def probe_parser(out: str) -> argparse.ArgumentParser:
    """The options every forward probe takes: prompt length, dtype, threads, timing rounds, JSON path."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=368)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=out)
    return ap


def main() -> None:
    args = probe_parser("eval/results/forward_profile.json").parse_args()

    import torch
    import torch.nn.functional as F

    model = load_smollm2(args.dtype, args.threads)
    dt = model.dtype
    cfg = model.config
    T = args.tokens
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, cfg.vocab_size - 100, (1, T), generator=gen)
    mask = torch.ones_like(ids)
    H, KV = cfg.num_attention_heads, cfg.num_key_value_heads
    hd, inter, eps = cfg.hidden_size // H, cfg.intermediate_size, cfg.rms_norm_eps
    fused = []
    for layer in model.model.layers:
        a, mlp = layer.self_attn, layer.mlp
        fused.append({"qkv": torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).contiguous(),
                      "gu": torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).contiguous()})

    def rope(x: Any, cos: Any, sin: Any) -> Any:
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat((-x2, x1), -1) * sin

    def norm(h: Any, w: Any) -> Any:
        return w * F.rms_norm(h.float(), (h.shape[-1],), eps=eps).to(h.dtype)

    def lean() -> Any:
        h = model.model.embed_tokens(ids)
        cos, sin = model.model.rotary_emb(h, torch.arange(T)[None])
        cos, sin = cos[:, None], sin[:, None]
        for layer, w in zip(model.model.layers, fused):
            x = norm(h, layer.input_layernorm.weight)
            q, k, v = F.linear(x, w["qkv"]).split([H * hd, KV * hd, KV * hd], -1)
            q = rope(q.view(1, T, H, hd).transpose(1, 2), cos, sin)
            k = rope(k.view(1, T, KV, hd).transpose(1, 2), cos, sin)
            v = v.view(1, T, KV, hd).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            h = h + layer.self_attn.o_proj(o.transpose(1, 2).reshape(1, T, H * hd))
            g, u = F.linear(norm(h, layer.post_attention_layernorm.weight), w["gu"]).split([inter, inter], -1)
            h = h + layer.mlp.down_proj(F.silu(g) * u)
        return model.lm_head(model.model.norm(h[:, -1:]))

    def hf(**kw: Any) -> Callable[[], Any]:
        return lambda: model(input_ids=ids, logits_to_keep=1, use_cache=False, **kw).logits

    # each RMSNorm and MLP forward is replaced once by one that follows ``surgery["on"]``, so an arm switches
    # pieces with one assignment instead of re-patching 91 modules inside the timed calls
    surgery = {"on": ""}
    for m in [m for m in model.modules() if type(m).__name__.endswith("RMSNorm")]:
        def norm_fwd(h: Any, m: Any = m, plain: Any = m.forward) -> Any:
            return norm(h, m.weight) if surgery["on"] in ("norm", "both") else plain(h)
        m.forward = norm_fwd
    for layer, w in zip(model.model.layers, fused):
        def mlp_fwd(x: Any, mlp: Any = layer.mlp, plain: Any = layer.mlp.forward, gu: Any = w["gu"]) -> Any:
            if surgery["on"] not in ("mlp", "both"):
                return plain(x)
            g, u = F.linear(x, gu).split([inter, inter], -1)
            return mlp.down_proj(F.silu(g) * u)
        layer.mlp.forward = mlp_fwd

    def patched(which: str) -> Callable[[], Any]:
        def run() -> Any:
            surgery["on"] = which
            try:
                return hf(attention_mask=mask)()
            finally:
                surgery["on"] = ""
        return run

    arms = {"transformers (mask)": hf(attention_mask=mask), "transformers (no mask)": hf(),
            "+ F.rms_norm": patched("norm"), "+ fused gate/up": patched("mlp"),
            "+ both": patched("both"), "lean forward": lean}
    report: dict[str, Any] = {"tokens": T, "dtype": args.dtype, "threads": args.threads,
                              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    with torch.inference_mode():
        ref = arms["transformers (mask)"]().float()
        report["agreement"] = {}
        for name, f in arms.items():
            out = f().float()
            report["agreement"][name] = {"max_abs_logit_diff": float((out - ref).abs().max()),
                                         "argmax_equal": bool(out.argmax() == ref.argmax())}
        times = best_ms(arms, args.rounds, 8)
        base = min(times["transformers (mask)"])
        report["ms"] = {k: {"best": round(min(v), 1), "rounds": [round(x, 1) for x in v],
                            "speedup": round(base / min(v), 3)} for k, v in times.items()}

        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                arms["transformers (mask)"]()
        total = sum(e.self_cpu_time_total for e in prof.key_averages())
        report["profile"] = [{"op": e.key, "self_share": round(e.self_cpu_time_total / total, 4),
                              "calls_per_forward": e.count // 5,
                              "self_ms_per_forward": round(e.self_cpu_time_total / 5 / 1000, 2)}
                             for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]]

        gemms = {}
        for k_in, n_out in [(576, 576), (576, 192), (576, 960), (576, 1536), (576, 3072), (1536, 576)]:
            x = torch.randn(T, k_in, dtype=dt)
            w = torch.randn(n_out, k_in, dtype=dt)
            ms = min(best_ms({"g": lambda x=x, w=w: F.linear(x, w)}, 3, 30)["g"])
            gemms[f"{k_in}->{n_out}"] = {"us": round(ms * 1000), "gflops": round(2 * T * k_in * n_out / ms / 1e6)}
        report["gemm"] = gemms

        x = torch.randn(T, inter, dtype=dt)
        y = torch.randn(T, inter, dtype=dt)
        hid = torch.randn(1, T, cfg.hidden_size, dtype=dt)
        wn = model.model.norm.weight
        hf_norm = model.model.norm
        t0 = time.perf_counter()
        silu_mul = torch.compile(lambda a, b: F.silu(a) * b, dynamic=True)
        norm_c = torch.compile(lambda h, w: norm(h, w), dynamic=True)
        silu_mul(x, y)
        norm_c(hid, wn)
        compile_s = time.perf_counter() - t0
        ew = best_ms({"silu*mul eager": lambda: F.silu(x) * y, "silu*mul compiled": lambda: silu_mul(x, y),
                      "RMSNorm transformers": lambda: hf_norm(hid), "RMSNorm F.rms_norm": lambda: norm(hid, wn),
                      "RMSNorm compiled": lambda: norm_c(hid, wn)}, 3, 50)
        report["elementwise_us"] = {k: round(min(v) * 1000) for k, v in ew.items()}
        report["elementwise_compile_s"] = round(compile_s, 1)

    print(json.dumps(report, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
