"""``rerankkit list [--json]`` and ``rerankkit show PRESET``."""

from __future__ import annotations

import argparse

from ._common import add_presets_file, load_presets_files, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list reranker presets", description="List every reranker preset.")
    p.add_argument("--json", action="store_true", help="print JSON (name -> spec)")
    add_presets_file(p)
    p.set_defaults(func=list_presets)
    s = sub.add_parser("show", help="show a preset's spec as TOML", description="Print a preset's full spec.")
    s.add_argument("preset")
    add_presets_file(s)
    s.set_defaults(func=show)


def list_presets(args: argparse.Namespace) -> int:
    from ..presets import RERANKER_PRESETS

    load_presets_files(args.presets)
    items = list(RERANKER_PRESETS.items())
    if args.json:
        print_json({name: spec.to_dict() for name, spec in items})
        return 0
    rows = [[name, spec.strategy, spec.backend, spec.description] for name, spec in items]
    print(table(rows, ["preset", "strategy", "backend", "description"]))
    return 0


def show(args: argparse.Namespace) -> int:
    from ..presets import RERANKER_PRESETS

    load_presets_files(args.presets)
    name = RERANKER_PRESETS.resolve(args.preset)
    spec = RERANKER_PRESETS.get(name)
    aliases = RERANKER_PRESETS.aliases_of(name)
    if aliases:
        print(f"# aliases: {', '.join(aliases)}")
    print(spec.replace(name=spec.name or name).to_toml(), end="")
    return 0
