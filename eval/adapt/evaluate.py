"""nDCG@10 of BM25 and of rerankers over its top-k, on a dataset's test queries (eval/adapt.md).

    python eval/adapt/evaluate.py --dataset beir/scifact --depth 20 \
        --presets runs/adapt/scifact-duqgen/preset.toml \
        --preset pointwise-smollm2-135m --preset scifact-duqgen-smollm2 --out eval/results/adapt/scifact.json

BEIR: BM25 is the `bm25` preset (bm25s) over the corpus; TREC DL: the official BM25 top-100 candidate lists.
Every reranker uses the same first stage and `--max-doc-tokens` (where its strategy has the parameter; the
LoRA recipes train with 128). `--arms` can run a subset and the JSON file is merged, so conditions can be
added one at a time. Runs are written to runs/adapt/eval/. Each reranker's row also holds its paired comparison
with BM25 over the same queries (mean difference, win/tie/loss, paired t and bootstrap p); `--report-only`
recomputes the rows from the runs already written there, without loading a model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rerankkit import Reranker
from rerankkit.data import load_dataset, read_run, write_run
from rerankkit.eval import evaluate
from rerankkit.eval.significance import compare
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
    ap.add_argument("--report-only", action="store_true", help="score the runs already in runs/adapt/eval/")
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
    base = evaluate(run, qrels, MEASURES, queries=scope)
    rows["bm25"] = base.aggregate
    print("bm25", rows["bm25"], flush=True)
    tag = args.dataset.replace("/", "-")
    for preset in args.preset:
        path = Path("runs/adapt/eval") / f"{tag}-{args.depth}-{preset}.run"
        if args.report_only:
            ranked, row = read_run(path), dict(rows.get(preset, {}))
        else:
            rr = Reranker(preset, cache=args.cache)
            extra = {"max_doc_tokens": args.max_doc_tokens} if "max_doc_tokens" in names(rr.strategy.Params) else {}
            rr = Reranker(preset, cache=args.cache, **extra)
            t = time.perf_counter()
            ranked = rr.rerank_run(run, depth=args.depth, chunk_size=16)
            row = {"wall_s": round(time.perf_counter() - t, 1), "spec": rr.spec.to_dict()}
            write_run(ranked, path)
            rr.close()
        scores = evaluate(ranked, qrels, MEASURES, queries=scope)
        rows[preset] = {**row, **scores.aggregate, "vs_bm25": paired(scores, base, scope)}
        print(preset, {k: v for k, v in rows[preset].items() if k != "spec"}, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def paired(a, b, scope: list[str]) -> dict:
    """nDCG@10 of run ``a`` against run ``b`` per query (judged queries of ``scope``; a missing one scores 0)."""
    qids = [q for q in scope if q in a.per_query or q in b.per_query]
    x = [a.per_query.get(q, {}).get(MEASURES[0], 0.0) for q in qids]
    y = [b.per_query.get(q, {}).get(MEASURES[0], 0.0) for q in qids]
    c = compare(x, y)
    return {"queries": c.n, "diff": round(c.diff, 4), "win_tie_loss": [c.wins, c.ties, c.losses],
            "t_p": round(c.p_t, 4), "bootstrap_p": round(c.p_boot, 4),
            "ci95": [round(c.ci_low, 4), round(c.ci_high, 4)]}


if __name__ == "__main__":
    main()
