"""Small helpers shared by the command modules (argument parsing only; no logic of their own)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigError


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (values stay strings; strategies and backends coerce them)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def add_dataset_or_file(p: argparse.ArgumentParser, dataset_help: str, flag: str, file_help: str) -> None:
    """``--dataset NAME`` or ``--FLAG FILE``: exactly one of the two is required."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help=dataset_help)
    src.add_argument(flag, metavar="FILE", help=file_help)


def add_presets_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", metavar="FILE", action="append", default=[],
                   help="extra presets TOML file(s) to register first (also: $RERANKKIT_PRESETS)")


def load_presets_files(files: list[str]) -> None:
    """Register the presets of each file (a preset already registered with the same spec is skipped)."""
    from ..presets import RERANKER_PRESETS, register_presets
    from ..registry import Registry

    for f in files:
        staged: Registry = Registry("reranker preset")
        register_presets(f, staged)
        for name, spec in staged.items():
            if name in RERANKER_PRESETS and RERANKER_PRESETS.get(name) == spec:
                continue
            RERANKER_PRESETS.register(name, spec, tuple(staged.aliases_of(name)))


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain fixed-width table."""
    cols = [header, *rows]
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in cols]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--ray-set KEY=VALUE``: run the parallel part on Ray actors."""
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray actors: a local Ray instance when no ADDRESS is given, 'auto' for the cluster "
                        "this machine belongs to, or HOST:PORT of a head node (extra 'ray')")
    p.add_argument("--ray-set", dest="ray_options", action="append", metavar="KEY=VALUE",
                   help="Ray executor option: workers, num_cpus, num_gpus (per actor), max_restarts, "
                        "max_task_retries, start_timeout_s, resources.NAME (repeatable)")


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor the command line asks for (None: run in this process)."""
    if getattr(args, "ray", None) is None:
        if getattr(args, "ray_options", None):
            raise ConfigError("--ray-set needs --ray")
        return None
    from ..executors import ray_executor_from_args

    return ray_executor_from_args(args.ray, parse_sets(args.ray_options) if args.ray_options else None)
