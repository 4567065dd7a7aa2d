"""``rerankkit rerank PRESET (--dataset NAME [--run FILE] | --candidates FILE) -o RUN``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..errors import InputError
from ._common import (
    add_dataset_or_file,
    add_executor_args,
    add_presets_file,
    executor_from_args,
    load_presets_files,
    parse_sets,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rerank", help="rerank candidate lists with a preset and write a TREC run",
                       description="Rerank the candidates of a dataset (or a RankGPT-style JSONL file) and write "
                                   "a TREC run plus RUN.spec.toml and RUN.meta.json.")
    p.add_argument("preset", help="preset name (see `rerankkit list`)")
    add_dataset_or_file(p, "dataset name or local path (see `rerankkit datasets list`)", "--candidates",
                        "RankGPT-style JSONL/JSON candidates with texts")
    p.add_argument("--source", help="candidate source of the dataset (default: the dataset's own, e.g. bm25)")
    p.add_argument("--run", metavar="FILE", help="first-stage TREC run over --dataset (e.g. from `rerankkit "
                                                 "retrieve`); texts come from the dataset's queries and corpus")
    p.add_argument("--split", help="dataset split (BEIR and local folders; default test)")
    p.add_argument("--depth", type=int, help="rerank the first N candidates of each query (the rest keep their order)")
    p.add_argument("--queries", type=int, metavar="N", help="only the first N queries")
    p.add_argument("--top-k", type=int, help="write only the first K documents per query")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a spec field, strategy parameter or backend option (repeatable)")
    p.add_argument("--chunk-size", type=int, help="queries per batch of model calls (default: all)")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="output TREC run file")
    p.add_argument("--tag", help="run tag (default: the preset name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cache", metavar="PATH", help="answer cache (SQLite): reruns and interrupted runs reuse answers")
    add_presets_file(p)
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset, read_candidates, write_run
    from ..reranker import Reranker

    load_presets_files(args.presets)
    if (args.run or args.split or args.source) and not args.dataset:
        raise InputError("--run, --split and --source go with --dataset")
    if args.run and args.source:
        raise InputError("give --run FILE or --source NAME, not both")
    # data first: a wrong dataset or run file fails before any model is loaded
    if args.dataset:
        ds = load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
        candidates = run_with_texts(ds, args.run) if args.run else ds.candidates(args.source)
    else:
        candidates = read_candidates(args.candidates)
    candidates = candidates.head(args.queries)
    reranker = Reranker(args.preset, cache=args.cache, **parse_sets(args.overrides))
    executor = executor_from_args(args)
    t0 = time.perf_counter()
    try:
        out = reranker.rerank_run(candidates, depth=args.depth, top_k=args.top_k, progress=not args.no_progress,
                                  chunk_size=args.chunk_size, executor=executor)
    finally:
        reranker.close()
        if executor is not None:
            executor.close()
    out.metadata.update({
        "preset": args.preset,
        "dataset": args.dataset or candidates.metadata.get("source"),
        "candidates": args.run or candidates.metadata.get("candidates", args.candidates),
        "queries": len(out),
        "command": " ".join(["rerankkit", *sys.argv[1:]]) if sys.argv else "",
    })
    write_run(out, args.output, tag=args.tag or args.preset)
    print(f"wrote {args.output} ({len(out)} queries, depth {args.depth or 'all'}) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def run_with_texts(ds: Any, path: str) -> Any:
    """A TREC run over ``ds`` with the dataset's query and document texts; unknown ids are an error."""
    from ..data import read_run
    from ..types import Ranking, Run, ScoredDoc

    queries = {q.qid: q for q in ds.queries()}
    run = read_run(path)
    wanted = {sd.doc.docid for r in run.values() for sd in r.docs}
    docs = {d.docid: d for d in ds.corpus() if d.docid in wanted}
    missing_q = [qid for qid in run if qid not in queries]
    missing_d = sorted(wanted - set(docs))
    if missing_q or missing_d:
        raise InputError(f"{path}: {len(missing_q)} query ids and {len(missing_d)} document ids are not in "
                         f"{ds.name} (e.g. {(missing_q + missing_d)[:3]}); is it a run over this dataset and split?")
    # the parsed order and scores, with the dataset's texts (the file is read once)
    return Run([Ranking(queries[qid], tuple(ScoredDoc(docs[sd.doc.docid], sd.score) for sd in r.docs))
                for qid, r in run.items()], run.metadata)
