"""nDCG@10 of BM25 and of rerankers over its top-k, on a dataset's test queries (eval/adapt.md).

    python eval/adapt/evaluate.py --dataset beir/scifact --depth 20 \
        --presets runs/adapt/scifact-duqgen/preset.toml \
        --preset pointwise-smollm2-135m --preset scifact-duqgen-smollm2 --out eval/results/adapt/scifact.json

BEIR: BM25 is the `bm25` preset (bm25s) over the corpus; TREC DL: the official BM25 top-100 candidate lists.
Every reranker uses the same first stage and `--max-doc-tokens` (where its strategy has the parameter; the
LoRA recipes train with 128). `--arms` can run a subset and the JSON file is merged, so conditions can be
added one at a time. Runs are written to runs/adapt/eval/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rerankkit import Reranker
from rerankkit.data import load_dataset, write_run
from rerankkit.eval import evaluate
from rerankkit.options import names
from rerankkit.presets import register_presets
from rerankkit.retrievers import Retriever

MEASURES = ["nDCG@10"]


def first_stage(dataset: str, depth: int, n: int | None):
    ds = load_dataset(dataset, split="test") if dataset.startswith("beir/") else load_dataset(dataset)
    queries = ds.queries()[:n] if n else ds.queries()
    if ds.has_corpus():
        bm25 = Retriever("bm25")
        bm25.index(ds)
        run = bm25.search(queries, k=depth)
    else:
        run = ds.candidates("bm25").top(depth)
        keep = {q.qid for q in queries}
        from rerankkit.types import Run

        run = Run([r for qid, r in run.items() if qid in keep], run.metadata)
    return ds, queries, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--queries", type=int, default=None, help="first N test queries (default: all)")
    ap.add_argument("--preset", action="append", default=[], help="a reranker preset (repeatable)")
    ap.add_argument("--presets", action="append", default=[], help="a presets TOML file to register (repeatable)")
    ap.add_argument("--max-doc-tokens", type=int, default=128)
    ap.add_argument("--cache", default=None, help="answer cache for the rerankers")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for f in args.presets:
        register_presets(f)

    ds, queries, run = first_stage(args.dataset, args.depth, args.queries)
    qrels = ds.qrels()
    scope = [q.qid for q in queries]
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    if result and (result.get("dataset"), result.get("depth"), result.get("queries")) != \
            (args.dataset, args.depth, len(queries)):
        raise SystemExit(f"{out} holds another setting ({result.get('dataset')}, depth {result.get('depth')}, "
                         f"{result.get('queries')} queries); use another --out")
    result.update(dataset=args.dataset, depth=args.depth, queries=len(queries), max_doc_tokens=args.max_doc_tokens)
    rows = result.setdefault("results", {})
    rows["bm25"] = evaluate(run, qrels, MEASURES, queries=scope).aggregate
    print("bm25", rows["bm25"], flush=True)
    tag = args.dataset.replace("/", "-")
    for preset in args.preset:
        rr = Reranker(preset, cache=args.cache)
        extra = {"max_doc_tokens": args.max_doc_tokens} if "max_doc_tokens" in names(rr.strategy.Params) else {}
        rr = Reranker(preset, cache=args.cache, **extra)
        t = time.perf_counter()
        ranked = rr.rerank_run(run, depth=args.depth, chunk_size=16)
        wall = round(time.perf_counter() - t, 1)
        write_run(ranked, Path("runs/adapt/eval") / f"{tag}-{args.depth}-{preset}.run")
        rows[preset] = {**evaluate(ranked, qrels, MEASURES, queries=scope).aggregate, "wall_s": wall,
                        "spec": rr.spec.to_dict()}
        print(preset, {k: v for k, v in rows[preset].items() if k != "spec"}, flush=True)
        rr.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
