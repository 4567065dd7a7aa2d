"""``rerankkit adapt CONFIG.yaml``: DUQGen domain adaptation or distillation from a teacher, then LoRA training."""

from __future__ import annotations

import argparse

from ._common import parse_sets, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="adapt a reranker to a collection (DUQGen) or distil a teacher (extra: peft)",
                       description="Sample documents of a target collection (k-means clusters, DUQGen), generate a "
                                   "query for each with a few-shot prompt, label first-stage candidates (the "
                                   "generating document, or a teacher's ranking) and train a LoRA adapter "
                                   "(see docs/training.md). Rerunning resumes: stages are reused, generated "
                                   "answers come from the answer cache, training from its last checkpoint.")
    p.add_argument("config", help="adapt config (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field (repeatable), dotted into sections: --set seed=7, "
                        "--set sampling.documents=20, --set train.max_steps=2, --set train.lora.r=4")
    p.add_argument("--check", action="store_true", help="validate the config (no model loads) and print it")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..adapt import adapt, check_config, load_adapt_config

    cfg = load_adapt_config(args.config, parse_sets(args.overrides))
    if args.check:
        checked = check_config(cfg)
        print_json({"config": dataclasses.asdict(cfg), **checked})
        return 0
    record = adapt(cfg, progress=not args.no_progress)
    print_json({k: record[k] for k in ("mode", "objective", "queries", "eval_overlap", "train", "preset", "times_s")})
    return 0
