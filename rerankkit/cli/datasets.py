"""``rerankkit datasets list`` and ``rerankkit datasets info NAME``."""

from __future__ import annotations

import argparse

from ._common import print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list and describe datasets", description="The dataset registry.")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    dsub.required = True
    ls = dsub.add_parser("list", help="every registered dataset and whether its files are here")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=list_datasets)
    info = dsub.add_parser("info", help="details of one dataset (counts, files, citation)")
    info.add_argument("name", help="dataset name or local path")
    info.add_argument("--split", help="BEIR/local split (default test)")
    info.add_argument("--verify", action="store_true", help="check the sha256 of every local file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=show_info)
    ex = dsub.add_parser("export", help="write a dataset's candidate lists as a TREC run (or JSONL with texts)")
    ex.add_argument("name", help="dataset name or local path")
    ex.add_argument("--source", help="candidate source (default: the dataset's own, e.g. bm25)")
    ex.add_argument("--queries", type=int, metavar="N", help="only the first N queries")
    ex.add_argument("--depth", type=int, metavar="K", help="only the first K candidates per query")
    ex.add_argument("--jsonl", action="store_true", help="write RankGPT-style JSONL with texts instead of TREC")
    ex.add_argument("-o", "--output", required=True)
    ex.set_defaults(func=export)


def list_datasets(args: argparse.Namespace) -> int:
    from ..data import DATASETS, load_dataset
    from ..errors import DataNotFoundError

    rows = []
    for name in DATASETS.names():
        ds = load_dataset(name)
        try:
            where = str(ds.location())
        except DataNotFoundError:
            where = ""
        rows.append({"name": name, "kind": ds.kind, "available": bool(where), "location": where,
                     "description": ds.description})
    if args.json:
        print_json(rows)
        return 0
    print(table([[r["name"], "yes" if r["available"] else "no", r["description"]] for r in rows],
                ["dataset", "here", "description"]))
    return 0


def show_info(args: argparse.Namespace) -> int:
    from ..data import load_dataset

    ds = load_dataset(args.name, **({"split": args.split} if args.split else {}))
    info = ds.info()
    if args.verify:
        info["sha256"] = ds.verify()
    if args.json:
        print_json(info)
        return 0
    for key, value in info.items():
        if key == "sha256":
            print("sha256:")
            for f, status in value.items():
                print(f"  {status:8s} {f}")
        else:
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def export(args: argparse.Namespace) -> int:
    import sys

    from ..data import load_dataset, write_candidates, write_run

    ds = load_dataset(args.name)
    run = ds.candidates(args.source).head(args.queries).top(args.depth)
    if args.jsonl:
        write_candidates(run, args.output)
    else:
        write_run(run, args.output, tag=str(run.metadata.get("candidates", "candidates")))
    print(f"wrote {args.output} ({len(run)} queries)", file=sys.stderr)
    return 0
