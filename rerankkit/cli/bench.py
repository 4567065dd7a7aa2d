"""``rerankkit bench CONFIG.yaml [--check] [--only COND/DATASET] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import add_executor_args, executor_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark config (conditions x datasets) with cached model calls and a report",
        description="Run every condition x dataset of a YAML benchmark config: first stage, rerank (model answers "
                    "cached in SQLite, so a rerun or a resumed run redoes nothing), evaluate, account costs. "
                    "Writes OUT/results.jsonl, OUT/runs/*.trec, OUT/report.md, OUT/report.html and OUT/cost.png.",
    )
    p.add_argument("config", help="benchmark config (YAML; see docs/bench.md)")
    p.add_argument("--check", action="store_true",
                   help="compare metrics with the config's expectations; exit 1 when one is outside its tolerance")
    p.add_argument("--only", action="append", metavar="COND[/DATASET]",
                   help="run only matching pairs (glob patterns, e.g. 'bm25/dl19', '*/dl20', 'pointwise-*'; "
                        "repeatable)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the config's 'output', else "
                                                "bench-results/NAME)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="FILE", help="SQLite cache of model answers (default: OUT/cache.sqlite)")
    cache.add_argument("--no-cache", action="store_true", help="call the model for every request")
    p.add_argument("--validate", action="store_true", help="only validate the config and print the plan")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: rebuild the report (and --check) from OUT/results.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import (
        cache_path,
        check,
        default_output,
        format_check,
        load_config,
        read_results,
        run_bench,
        write_report,
    )

    config = load_config(args.config)
    out = Path(args.out) if args.out else default_output(config)
    cache: Path | bool | None = False if args.no_cache else Path(args.cache) if args.cache else None
    pairs = config.pairs(args.only)
    if args.validate:
        scored = "scored 0" if config.missing_as_zero else "left out of the mean"
        print(f"{args.config}: valid; {len(pairs)} run(s), measures {', '.join(config.measures)} "
              f"(judged queries missing from a run {scored})")
        for cond, ds in pairs:
            print(f"  {cond.name}/{config.label(ds)}: {cond.first_stage()}"
                  + (f", k={cond.k}" if cond.k else "") + (f", rerank {cond.reranker}" if cond.reranker else "")
                  + (f" depth={cond.depth}" if cond.depth and cond.reranker else "") + (f", {cond.queries} queries" if cond.queries
                                                                     else ""))
        print(f"  output {out}; cache {cache_path(config, out, cache) or 'off'}")
        return 0
    failed = 0
    executor = executor_from_args(args)
    if not args.report_only:
        try:
            records = run_bench(config, out, args.only, cache, progress=not args.no_progress, executor=executor)
        finally:
            if executor is not None:
                executor.close()
        failed = sum(1 for r in records if r.get("error"))
    paths = write_report(config, out, args.only)
    _summary(config, read_results(out), args.only)
    print(f"report: {paths['md']} {paths['html']}" + (f" {paths['png']}" if "png" in paths else ""), file=sys.stderr)
    if failed:
        print(f"{failed} run(s) failed; see the log above and {out / 'results.jsonl'}", file=sys.stderr)
    if args.check:
        rows = check(config, read_results(out), args.only)
        print(format_check(rows))
        if any(not r.passed for r in rows):
            return 1
    return 1 if failed else 0


def _summary(config, records, only) -> None:  # type: ignore[no-untyped-def]
    from ..bench.report import ordered
    from ._common import table

    chosen = {(c.name, d) for c, d in config.pairs(only)}
    rows = []
    for r in ordered(config, records):
        if (r["condition"], r["dataset"]) not in chosen:
            continue
        if r.get("error"):
            rows.append([r["condition"], r.get("dataset_label", r["dataset"]), "error", "", "", ""])
            continue
        rows.append([r["condition"], r.get("dataset_label", r["dataset"]),
                     *[f"{r['metrics'].get(m, float('nan')):.4f}" for m in config.measures[:1]],
                     str(r["model_calls"]), str(r["cached_calls"]), f"{r['wall_s']:.1f}"])
    print(table(rows, ["condition", "dataset", config.measures[0], "model calls", "cached", "wall s"]))
