"""``rerankkit train CONFIG.yaml``: fine-tune a reranker preset with LoRA."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a reranker with LoRA (extra: peft)",
                       description="Train a LoRA adapter for a reranker preset from a YAML config "
                                   "(see docs/training.md). Resumes from the last checkpoint in output_dir.")
    p.add_argument("config", help="training config (YAML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a top-level config field (repeatable), e.g. --set max_steps=10")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import ConfigError
    from ..train import train
    from ..train.config import config_from_dict

    with open(args.config, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        raw[key] = yaml.safe_load(value)
    summary = train(config_from_dict(raw, args.config), progress=not args.no_progress)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
