"""LoRA training loop: seeded, checkpointed and resumable, loss logged and plotted."""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .._lazy import require
from ..errors import ConfigError
from ..reranker import Reranker
from .config import TrainConfig, check_no_overlap
from .features import Batch, TrainingData, build_features, training_objective

log = logging.getLogger(__name__)


def training_reranker(cfg: TrainConfig) -> Reranker:
    """The preset's reranker with the config's dtype, max_doc_tokens and overrides (every key checked; no model
    is loaded yet)."""
    return Reranker(cfg.preset, dtype=cfg.dtype, **{"max_doc_tokens": cfg.max_doc_tokens, **cfg.overrides})


def train(cfg: TrainConfig, progress: bool = True, data: TrainingData | None = None) -> dict[str, Any]:
    """Train a LoRA adapter as ``cfg`` says; return a summary (also written to ``output_dir``).

    ``data``: the queries, graded documents and candidates to learn from (default: ``cfg``'s dataset split,
    see :func:`~rerankkit.train.features.load_training_data`)."""
    reranker = training_reranker(cfg)  # a misspelt override or an untrainable strategy fails before any loading
    cfg = replace(cfg, objective=training_objective(cfg, reranker.strategy))
    torch = require("torch", "hf", "training")
    peft = require("peft", "peft", "LoRA training")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    backend = reranker.backend
    if not hasattr(backend, "model") or not hasattr(backend, "tokenizer"):
        raise ConfigError(f"training needs the hf backend; preset {cfg.preset!r} uses {backend.name!r}")
    batches, info = build_features(cfg, reranker, data)
    check_no_overlap(info["train_qids"], info["eval_qids"], cfg.dataset)
    holdout = info.get("holdout")
    held_path = out / "holdout.json"
    held: dict[str, Any] = json.loads(held_path.read_text()) if held_path.exists() else {}
    if holdout is not None and "before" not in held:
        held = {"queries": len(holdout.queries), "depth": cfg.holdout_depth,
                "candidates": _ndcg10(holdout.candidates.top(cfg.holdout_depth), holdout.qrels)}
        _measure_holdout(torch, cfg, reranker, holdout, held, held_path, "before")

    task = "SEQ_2_SEQ_LM" if backend.kind == "seq2seq" else "CAUSAL_LM"
    lcfg = peft.LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                           target_modules=cfg.lora.target_modules, task_type=task)
    model = peft.get_peft_model(backend.model, lcfg)
    backend.model = model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    steps_per_epoch = math.ceil(len(batches) / cfg.grad_accum)
    total = cfg.max_steps or steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))
                                              * max(0.0, 1.0 - s / max(1, total)))
    state = {"step": 0, "losses": []}
    ckpt = latest_checkpoint(out)
    if ckpt is not None:
        state = _resume(torch, peft, model, opt, sched, ckpt)
        log.info("resumed from %s at step %d", ckpt, state["step"])

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=state["step"], disable=not progress, desc="train", unit="step")
    t0 = time.perf_counter()
    model.train()
    stopped = "max_steps"
    while state["step"] < total:
        step = state["step"]
        epoch, k = divmod(step, steps_per_epoch)
        if epoch >= cfg.epochs and not cfg.max_steps:
            break
        chunk = [batches[(k * cfg.grad_accum + a) % len(batches)] for a in range(cfg.grad_accum)]
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for b in chunk:
            with _autocast(torch, cfg):
                loss = b.loss(torch, backend) / cfg.grad_accum
            loss.backward()
            loss_sum += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        state["step"] += 1
        state["losses"].append({"step": state["step"], "loss": loss_sum, "lr": sched.get_last_lr()[0]})
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum:.4f}")
        if state["step"] % cfg.log_every == 0:
            log.info("step %d loss %.4f", state["step"], loss_sum)
        if state["step"] % cfg.checkpoint_every == 0 or state["step"] == total:
            save_checkpoint(torch, model, opt, sched, state, out)
        if cfg.max_minutes and (time.perf_counter() - t0) / 60 > cfg.max_minutes:
            stopped = "max_minutes"
            save_checkpoint(torch, model, opt, sched, state, out)
            break
    bar.close()
    model.eval()
    adapter_dir = out / "adapter"
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    model.save_pretrained(adapter_dir)
    if holdout is not None:
        held["after_step"] = state["step"]
        _measure_holdout(torch, cfg, reranker, holdout, held, held_path, "after")
    losses = state["losses"]
    (out / "losses.jsonl").write_text("".join(json.dumps(x) + "\n" for x in losses))
    kind = f"{cfg.objective}, {cfg.pointwise_loss}" if cfg.objective == "pointwise" else cfg.objective
    plot_losses(losses, out / "loss.png", f"{cfg.preset} LoRA ({kind}) on {cfg.dataset}/{cfg.split}")
    summary = {"steps": state["step"], "stopped_by": stopped, "examples": info["examples"],
               "train_queries": len(info["train_qids"]), "train_documents": len(info["documents"]),
               "first_loss": losses[0]["loss"] if losses else None,
               "last_loss": losses[-1]["loss"] if losses else None, "wall_s": round(time.perf_counter() - t0, 1),
               "adapter": str(adapter_dir)}
    if holdout is not None:
        summary["holdout"] = held
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _ndcg10(run: Any, qrels: Any) -> float:
    from ..eval import evaluate

    return float(evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"])


def _measure_holdout(torch: Any, cfg: TrainConfig, reranker: Reranker, holdout: Any, held: dict[str, Any],
                     path: Path, key: str) -> None:
    """Record in ``held`` (and ``path``) the nDCG@10 of ``reranker`` as it is now, in eval mode, on the
    held-out training-split queries."""
    was_training = reranker.backend.model.training
    reranker.backend.model.eval()
    try:
        with _autocast(torch, cfg):
            ranked = reranker.rerank_run(holdout.candidates.top(cfg.holdout_depth), depth=cfg.holdout_depth)
    finally:
        reranker.backend.model.train(was_training)
    held[key] = _ndcg10(ranked, holdout.qrels)
    path.write_text(json.dumps(held, indent=2))
    log.info("held-out %d queries: nDCG@10 %s training %.4f", len(holdout.queries), key, held[key])


def _autocast(torch: Any, cfg: TrainConfig) -> Any:
    import contextlib

    if cfg.autocast_bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def save_checkpoint(torch: Any, model: Any, opt: Any, sched: Any, state: dict[str, Any], out: Path) -> Path:
    """Write adapter, optimizer, scheduler, RNG and progress; the folder appears only when complete."""
    final = out / "checkpoints" / f"step-{state['step']:07d}"
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "adapter")
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                "py_rng": random.getstate()}, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    done = sorted(p for p in (out / "checkpoints").glob("step-*") if not p.name.endswith(".tmp")
                  and (p / "state.json").exists())
    return done[-1] if done else None


def _resume(torch: Any, peft: Any, model: Any, opt: Any, sched: Any, ckpt: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    weights = load_file(str(next((ckpt / "adapter").glob("adapter_model.*"))))
    peft.set_peft_model_state_dict(model, weights)
    blob = torch.load(ckpt / "trainer.pt", weights_only=False)
    opt.load_state_dict(blob["opt"])
    sched.load_state_dict(blob["sched"])
    torch.set_rng_state(blob["rng"])
    random.setstate(blob["py_rng"])
    return json.loads((ckpt / "state.json").read_text())


def plot_losses(losses: list[dict[str, Any]], path: Path, title: str) -> None:
    if not losses:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib not installed (pip install 'rerankkit[bench]'): no loss curve")
        return
    steps = [x["step"] for x in losses]
    vals = [x["loss"] for x in losses]
    w = max(1, len(vals) // 20)
    smooth = [sum(vals[max(0, i - w + 1): i + 1]) / len(vals[max(0, i - w + 1): i + 1]) for i in range(len(vals))]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(steps, vals, alpha=0.35, label="loss")
    ax.plot(steps, smooth, label=f"moving average ({w})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["Batch", "TrainingData", "latest_checkpoint", "plot_losses", "save_checkpoint", "train"]
