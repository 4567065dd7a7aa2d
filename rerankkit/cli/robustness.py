"""``rerankkit robustness PRESET --dataset D [--formats K] [--orders M] [--seed S] ...``."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from ..errors import ConfigError
from ._common import add_presets_file, load_presets_files, parse_sets

DEFAULT_LIMIT = 10000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness", help="measure how much a reranker's result depends on its prompt format and input order",
        description="Rerank a dataset's candidates under K prompt formats (the template as written plus K-1 "
                    "semantically equivalent ones sampled from the format grammar) and M seeded shuffles of the "
                    "first-stage order, through the answer cache (a rerun is free, an interrupted study resumes). "
                    "Reports the measure per format (min, max, spread, std; best and worst rendered), Kendall tau "
                    "across shuffles, the position-bias curve, and paired tests of best vs worst format. Writes "
                    "OUT/robustness.json, OUT/report.md, OUT/report.html and plots. Prints the number of model "
                    "calls first and asks for --yes above --limit.")
    p.add_argument("preset", help="reranker preset (see `rerankkit list`)")
    p.add_argument("--dataset", required=True, help="dataset name or local path (see `rerankkit datasets list`)")
    p.add_argument("--source", help="candidate source of the dataset (default: its own, e.g. bm25)")
    p.add_argument("--split", help="dataset split (BEIR and local folders; default test)")
    p.add_argument("--formats", type=int, default=5, metavar="K",
                   help="prompt formats, the template as written included (default 5)")
    p.add_argument("--orders", type=int, default=3, metavar="M",
                   help="seeded shuffles of the first-stage order, besides it (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the formats and shuffles (default 0)")
    p.add_argument("--depth", type=int, default=20, metavar="N", help="candidates reranked per query (default 20)")
    p.add_argument("--queries", type=int, metavar="Q", help="only the first Q queries")
    p.add_argument("--grid", action="store_true",
                   help="run every format under every order (default: formats at the first-stage order, "
                        "shuffles under the template as written)")
    p.add_argument("--measure", default="nDCG@10", help="measure compared (default nDCG@10)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a spec field, strategy parameter or backend option (repeatable)")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default robustness-results/PRESET-DATASET)")
    p.add_argument("--cache", metavar="PATH", help="answer cache (SQLite; default OUT/cache.sqlite)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="CALLS",
                   help=f"model calls allowed without --yes (default {DEFAULT_LIMIT})")
    p.add_argument("--yes", action="store_true", help="run even when the study needs more model calls than --limit")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the model calls, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_presets_file(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..options import build_options
    from ..robustness import Study, StudySettings
    from ..robustness.report import write_outputs

    load_presets_files(args.presets)
    settings = build_options(StudySettings, {"formats": args.formats, "orders": args.orders, "seed": args.seed,
                                             "depth": args.depth, "grid": args.grid, "measure": args.measure},
                             owner="rerankkit robustness", label="robustness", noun="setting")
    from ..eval import parse_measures

    parse_measures([settings.measure])
    ds = load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
    candidates = ds.candidates(args.source).head(args.queries)
    out = Path(args.out) if args.out else Path("robustness-results") / _slug(f"{args.preset}-{args.dataset}")
    study = Study(args.preset, candidates, ds, out, settings, parse_sets(args.overrides), dataset=args.dataset)
    cost = study.estimate()
    print(f"{args.preset} on {args.dataset}: {len(candidates)} queries x {settings.depth} candidates, "
          f"{len(study.formats)} formats x {settings.orders} shuffles, {len(study.cells)} runs")
    for row in cost.rows:
        print(f"  {row['cell']}  {row['requests']:>7} requests  {row['new']:>7} new  {row['format']}")
    print(f"model calls: {cost.describe()}")
    if args.dry_run:
        return 0
    if cost.model_calls > args.limit and not args.yes and not _confirm(cost.model_calls, args.limit):
        raise ConfigError(f"this study makes about {cost.model_calls} model calls, more than --limit {args.limit}; "
                          "pass --yes to run it (answers already in the cache are not model calls)")
    cache = Path(args.cache) if args.cache else out / "cache.sqlite"
    command = "rerankkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    records = study.run(cache=cache, progress=not args.no_progress,
                        on_cell=lambda cell, rec: print(
                            f"  {cell.label} {study.formats[cell.format].key()}: {settings.measure} {rec['mean']:.4f} "
                            f"({rec['model_calls']} model calls, {rec['cached_calls']} cached, {rec['wall_s']:.1f} s)",
                            file=sys.stderr))
    est = {"model_calls": cost.model_calls, "requests": cost.requests, "exact": cost.exact}
    paths = write_outputs(study, records, out, command, est)
    summary_line(paths["json"])
    print(f"report: {paths['md']} {paths['html']}", file=sys.stderr)
    return 0


def summary_line(path: Path) -> None:
    import json

    s = json.loads(path.read_text(encoding="utf-8"))
    f = s["formats"]
    measure = s["setup"]["settings"]["measure"]
    if f.get("spread"):
        sp = f["spread"]
        print(f"{measure} over {len(f['formats'])} formats: min {sp['min']:.4f} max {sp['max']:.4f} "
              f"spread {sp['spread']:.4f} std {sp['std']:.4f}")
    for o in s["orders"]:
        print(f"orders (format F{o['format']:02d}): Kendall tau mean {o['tau_mean']:.3f} min {o['tau_min']:.3f}")
    if s.get("position_bias"):
        top = s["position_bias"]["top1"]
        print(f"position bias: shown first ends first in {top[0]:.3f} of shuffles "
              f"(order-blind {s['position_bias']['uniform'][0]:.3f})")


def _confirm(calls: int, limit: int) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"about {calls} model calls (more than --limit {limit}); run? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
