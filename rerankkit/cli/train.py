"""``rerankkit train CONFIG.yaml``: fine-tune a reranker preset with LoRA."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import parse_sets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a reranker with LoRA (extra: peft)",
                       description="Train a LoRA adapter for a reranker preset from a YAML config "
                                   "(see docs/training.md). Resumes from the last checkpoint in output_dir.")
    p.add_argument("config", help="training config (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable), e.g. --set max_steps=10, --set lora.r=8, "
                        "--set overrides.model=PATH")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from ..train import train
    from ..train.config import config_from_dict, read_train_yaml

    raw = read_train_yaml(args.config)  # repeated keys and control characters name their line
    for key, value in parse_sets(args.overrides).items():  # strings: the config's declared types read them
        head, dot, rest = key.partition(".")
        if dot and head in ("lora", "overrides"):
            raw[head] = {**(raw.get(head) or {}), rest: value}
        else:
            raw[key] = value
    summary = train(config_from_dict(raw, args.config), progress=not args.no_progress)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
