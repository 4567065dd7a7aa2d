"""``rerankkit index PRESET --dataset NAME``, ``rerankkit retrieve PRESET --dataset NAME -k K -o RUN``,
``rerankkit retrievers`` (list the retriever presets)."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import add_executor_args, executor_from_args, parse_sets, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("index", help="build (or check) a retriever's index of a dataset's corpus",
                       description="Index a dataset's documents with a retriever preset. The index is cached "
                                   "(--cache-dir, $RERANKKIT_CACHE or ~/.cache/rerankkit); a cached intact "
                                   "index is reused, a damaged one rebuilt.")
    _common(i)
    i.add_argument("--rebuild", action="store_true", help="rebuild even when an intact index is cached")
    i.add_argument("--json", action="store_true", help="print the index facts as JSON")
    i.set_defaults(func=index)

    r = sub.add_parser("retrieve", help="retrieve the top-k documents of every query and write a TREC run",
                       description="Search a dataset's queries with a retriever preset (indexing first if "
                                   "needed) and write a TREC run plus RUN.meta.json (spec, index, timings).")
    _common(r)
    r.add_argument("-k", type=int, default=1000, help="documents per query (default 1000)")
    r.add_argument("-o", "--output", required=True, metavar="RUN", help="output TREC run file")
    r.add_argument("--queries", type=int, metavar="N", help="only the first N queries")
    r.add_argument("--remove-query", action="store_true",
                   help="drop a document whose id equals the query id (BEIR ArguAna/Quora convention)")
    r.add_argument("--tag", help="run tag (default: the preset name)")
    r.set_defaults(func=retrieve)

    ls = sub.add_parser("retrievers", help="list retriever presets", description="List every retriever preset.")
    ls.add_argument("--json", action="store_true", help="print JSON (name -> spec)")
    ls.set_defaults(func=list_retrievers)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="retriever preset (see `rerankkit retrievers`), e.g. bm25, bm25-lucene, dense-minilm")
    p.add_argument("--dataset", required=True, help="dataset name or local path (see `rerankkit datasets list`)")
    p.add_argument("--split", help="dataset split (BEIR and local folders; default test)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a retriever parameter, e.g. k1=1.2 or model=BAAI/bge-small-en-v1.5 (repeatable)")
    p.add_argument("--cache-dir", help="index cache folder (default $RERANKKIT_CACHE or ~/.cache/rerankkit)")
    p.add_argument("--retriever-presets", metavar="FILE", action="append", default=[],
                   help="extra retriever presets TOML file(s) to register first")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_args(p)


def _open(args: argparse.Namespace):  # noqa: ANN202
    from ..data import load_dataset
    from ..retrievers import Retriever, register_retriever_presets

    for f in args.retriever_presets:
        register_retriever_presets(f)
    retriever = Retriever(args.preset, cache_dir=args.cache_dir, **parse_sets(args.overrides))
    dataset = load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
    return retriever, dataset


def index(args: argparse.Namespace) -> int:
    retriever, dataset = _open(args)
    info = _index(retriever, dataset, args, rebuild=args.rebuild)
    if args.json:
        print_json(info.to_dict())
        return 0
    how = "reused" if info.reused else f"built in {info.build_s:.1f} s"
    extra = f"; {info.replaced_chars} undecodable character(s) replaced" if info.replaced_chars else ""
    print(f"{retriever.spec.name} index of {dataset.name}: {info.n_docs} documents, {how}{extra}\n{info.path}")
    return 0


def retrieve(args: argparse.Namespace) -> int:
    from ..data import write_run

    retriever, dataset = _open(args)
    t0 = time.perf_counter()
    info = _index(retriever, dataset, args)
    queries = dataset.queries()[: args.queries] if args.queries else dataset.queries()
    run = retriever.search(queries, k=args.k, remove_query=args.remove_query, progress=not args.no_progress)
    run.metadata.update({"preset": args.preset, "dataset": dataset.name,
                         "command": " ".join(["rerankkit", *sys.argv[1:]]) if sys.argv else ""})
    write_run(run, args.output, tag=args.tag or retriever.spec.name or args.preset)
    print(f"wrote {args.output} ({len(run)} queries, k={args.k}; index {'reused' if info.reused else 'built'}) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _index(retriever, dataset, args: argparse.Namespace, rebuild: bool = False):  # noqa: ANN001,ANN202
    executor = executor_from_args(args)
    try:
        return retriever.index(dataset, rebuild=rebuild, progress=not args.no_progress, executor=executor)
    finally:
        if executor is not None:
            executor.close()


def list_retrievers(args: argparse.Namespace) -> int:
    from ..retrievers import RETRIEVER_PRESETS

    items = list(RETRIEVER_PRESETS.items())
    if args.json:
        print_json({name: spec.to_dict() for name, spec in items})
        return 0
    rows = [[name, spec.engine, str(spec.params.get("model", "")), spec.description] for name, spec in items]
    print(table(rows, ["preset", "engine", "model", "description"]))
    return 0
