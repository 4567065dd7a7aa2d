"""``rerankkit list [--json]`` and ``rerankkit show PRESET``."""

from __future__ import annotations

import argparse

from ._common import add_presets_file, load_presets_files, parse_sets, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list reranker presets", description="List every reranker preset.")
    p.add_argument("--json", action="store_true", help="print JSON (name -> spec)")
    add_presets_file(p)
    p.set_defaults(func=list_presets)
    s = sub.add_parser("show", help="show a preset's spec as TOML, with every option",
                       description="Print a preset's full spec as TOML, then (as TOML comments) every option of its "
                                   "strategy and backend with its current value, default and help.")
    s.add_argument("preset")
    s.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="show the spec with these overrides applied (as `rerankkit rerank --set`)")
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
    if args.overrides:
        from ..reranker import Reranker

        spec = Reranker(spec, **parse_sets(args.overrides)).spec  # checked as a run would check them
    aliases = RERANKER_PRESETS.aliases_of(name)
    if aliases:
        print(f"# aliases: {', '.join(aliases)}")
    print(spec.replace(name=spec.name or name).to_toml(), end="")
    print(options_table(spec))
    return 0


def options_table(spec) -> str:
    """Every option of ``spec``'s strategy and backend as TOML comment lines: name, current value, default, help."""
    from ..overrides import spec_options

    rows = [[f"{o.table}.{o.info.name}", _shown(o.value), _shown(o.info.default), _help(o.info)]
            for o in spec_options(spec)]
    lines = table(rows, ["option", "current", "default", "help"]).splitlines()
    return "\n# " + f"options of strategy {spec.strategy!r} and backend {spec.backend!r} (set any with KEY=VALUE):\n" + \
        "\n".join(f"# {line}" for line in lines)


def _shown(value) -> str:
    import json

    return "none" if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _help(info) -> str:
    extra = f" [{' | '.join(_shown(c) for c in info.choices)}]" if info.choices else ""
    return info.help + extra
