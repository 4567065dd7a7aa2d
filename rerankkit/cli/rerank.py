"""``rerankkit rerank PRESET (--dataset NAME | --candidates FILE) -o RUN``."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import add_presets_file, load_presets_files, parse_sets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rerank", help="rerank candidate lists with a preset and write a TREC run",
                       description="Rerank the candidates of a dataset (or a RankGPT-style JSONL file) and write "
                                   "a TREC run plus RUN.spec.toml and RUN.meta.json.")
    p.add_argument("preset", help="preset name (see `rerankkit list`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset name or local path (see `rerankkit datasets list`)")
    src.add_argument("--candidates", metavar="FILE", help="RankGPT-style JSONL/JSON candidates with texts")
    p.add_argument("--source", help="candidate source of the dataset (default: the dataset's own, e.g. bm25)")
    p.add_argument("--depth", type=int, help="rerank the first N candidates of each query (the rest keep their order)")
    p.add_argument("--queries", type=int, metavar="N", help="only the first N queries")
    p.add_argument("--top-k", type=int, help="write only the first K documents per query")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a spec field, strategy parameter or backend option (repeatable)")
    p.add_argument("--chunk-size", type=int, help="queries per batch of model calls (default: all)")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="output TREC run file")
    p.add_argument("--tag", help="run tag (default: the preset name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_presets_file(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset, read_candidates, write_run
    from ..reranker import Reranker

    load_presets_files(args.presets)
    reranker = Reranker(args.preset, **parse_sets(args.overrides))
    if args.dataset:
        candidates = load_dataset(args.dataset).candidates(args.source)
    else:
        candidates = read_candidates(args.candidates)
    candidates = candidates.head(args.queries)
    t0 = time.perf_counter()
    try:
        out = reranker.rerank_run(candidates, depth=args.depth, top_k=args.top_k, progress=not args.no_progress,
                                  chunk_size=args.chunk_size)
    finally:
        reranker.close()
    out.metadata.update({
        "preset": args.preset,
        "dataset": args.dataset or candidates.metadata.get("source"),
        "candidates": candidates.metadata.get("candidates", args.candidates),
        "queries": len(out),
        "command": " ".join(["rerankkit", *sys.argv[1:]]) if sys.argv else "",
    })
    write_run(out, args.output, tag=args.tag or args.preset)
    print(f"wrote {args.output} ({len(out)} queries, depth {args.depth or 'all'}) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
