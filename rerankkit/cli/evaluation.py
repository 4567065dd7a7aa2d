"""``rerankkit eval RUN (--dataset NAME | --qrels FILE) -m nDCG@10 [-m ...] [--no-missing-as-zero] [--json]``."""

from __future__ import annotations

import argparse

from ._common import add_dataset_or_file, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a TREC run with ir-measures",
                       description="Score a TREC run against a dataset's qrels (BRIGHT exclusions applied) "
                                   "or a qrels file.")
    p.add_argument("run", help="TREC run file (qid Q0 docid rank score tag)")
    add_dataset_or_file(p, "dataset name whose qrels to use", "--qrels",
                        "TREC qrels file (qid 0 docid grade) or BEIR qrels tsv")
    p.add_argument("-m", "--measure", dest="measures", action="append", metavar="MEASURE",
                   help="ir-measures measure, e.g. nDCG@10, RR@10, R@100 (repeatable; default nDCG@10)")
    p.add_argument("--missing-as-zero", action=argparse.BooleanOptionalAction, default=True,
                   help="count judged queries absent from the run as 0 (the default: trec_eval -c, the ir_measures "
                        "command line, pyserini); --no-missing-as-zero averages over the run's judged queries only")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--per-query", action="store_true", help="also print each query's scores")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import read_run
    from ..eval import evaluate

    result = evaluate(read_run(args.run), args.dataset or args.qrels, args.measures or ["nDCG@10"],
                      missing_as_zero=args.missing_as_zero)
    if args.json:
        print_json(result.to_dict(per_query=args.per_query))
        return 0
    if args.per_query:
        rows = [[q, *(f"{v.get(m, float('nan')):.4f}" for m in result.measures)] for q, v in result.per_query.items()]
        print(table(rows, ["query", *result.measures]))
        print()
    rows = [[m, f"{v:.4f}"] for m, v in result.aggregate.items()]
    missing = f", {result.missing_queries} missing from the run as 0" if result.missing_queries else ""
    print(table(rows, ["measure", f"mean ({result.num_queries} queries{missing})"]))
    return 0
