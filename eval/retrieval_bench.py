"""Retrieval benchmark: index build time, queries/s, nDCG@10 and R@100 per engine on BEIR SciFact and
NFCorpus, and dense encoding speed next to raw sentence-transformers ``encode`` on the same texts.

    PYTHONPATH=$PWD RERANKKIT_DATA=/path/to/shared/data HF_HUB_OFFLINE=1 \
        python eval/retrieval_bench.py --out eval/retrieval.md

Every index is built fresh in a temporary cache (the build time is a real build), then searched
with k=100 for all test queries. Encoding speed: raw ``SentenceTransformer.encode`` and rerankkit's
dense index build are timed alternately (raw, ours, raw, ours, ...) on the same texts with the same
batch size, so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rerankkit import evaluate, load_dataset
from rerankkit.retrievers import Retriever

PUBLISHED = {"beir/scifact": 0.6789, "beir/nfcorpus": 0.3218}  # pyserini BM25 flat nDCG@10


def bench_engine(preset: str, name: str, cache: Path) -> dict:
    ds = load_dataset(name)
    r = Retriever(preset, cache_dir=cache)
    t0 = time.perf_counter()
    info = r.index(ds, rebuild=True)
    index_s = time.perf_counter() - t0
    queries = ds.queries()
    t0 = time.perf_counter()
    run = r.search(queries, k=100)
    search_s = time.perf_counter() - t0
    res = evaluate(run, ds, ["nDCG@10", "R@100"]).aggregate
    r.close()
    return {"dataset": name, "preset": preset, "docs": info.n_docs, "queries": len(queries),
            "index_s": round(index_s, 2), "search_s": round(search_s, 2), "qps": round(len(queries) / search_s, 1),
            "ndcg10": round(res["nDCG@10"], 4), "r100": round(res["R@100"], 4), "build": dict(info.build)}


def bench_encode(name: str, cache: Path, repeats: int) -> dict:
    """passages/s of raw sentence-transformers encode vs rerankkit's dense-minilm index build (encode part)."""
    from sentence_transformers import SentenceTransformer

    from rerankkit.retrievers.dense import resolve_model

    ds = load_dataset(name)
    docs = list(ds.corpus())
    texts = [" ".join(p for p in (d.title, d.text) if p) for d in docs]
    model = SentenceTransformer(resolve_model("packaged:all-minilm-l6-v2"), device="cpu")
    raw, ours, ours_build = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        raw.append(len(texts) / (time.perf_counter() - t0))
        r = Retriever("dense-minilm", cache_dir=cache)
        info = r.index(docs, rebuild=True)
        ours.append(float(info.build["passages_per_s"]))
        ours_build.append(float(info.build["build_s"]))
        r.close()
    return {"dataset": name, "passages": len(texts), "raw_pps": [round(x, 1) for x in raw],
            "ours_pps": [round(x, 1) for x in ours], "ours_build_s": ours_build,
            "raw_mean": round(statistics.mean(raw), 1), "ours_mean": round(statistics.mean(ours), 1),
            "ratio": round(statistics.mean(ours) / statistics.mean(raw), 3)}


def markdown(rows: list[dict], enc: list[dict], env: dict, command: str) -> str:
    out = ["# Retrieval benchmark (BEIR SciFact and NFCorpus, test split)", "",
           f"Command: `{command}`", "",
           f"Machine: {env['cpus']} CPU cores, {env['platform']}; load average before/after: "
           f"{env['load_before']} / {env['load_after']} (other jobs shared the cores). Date: {env['date']}.", "",
           "Index time = a fresh build (documents read, fingerprinted, indexed, checksummed). Queries/s = all test "
           "queries searched at k=100 in one call (Lucene: includes starting the JVM). nDCG@10 and R@100 with "
           "ir-measures; queries with no hit count as 0.", "",
           "| dataset | engine (preset) | docs | queries | index s | queries/s | nDCG@10 | R@100 | pyserini nDCG@10 |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['dataset']} | {r['preset']} | {r['docs']} | {r['queries']} | {r['index_s']:.2f} | "
                   f"{r['qps']:.1f} | {r['ndcg10']:.4f} | {r['r100']:.4f} | {PUBLISHED.get(r['dataset'], '')} |")
    if enc:
        out += ["", "## Dense encoding speed (all-MiniLM-L6-v2, batch 64, fp32, CPU)", "",
                "Runs alternate raw `SentenceTransformer.encode` and rerankkit's `dense-minilm` index build on the "
                "same title+text passages; rerankkit's number is the encode part of its build.", "",
                "| dataset | passages | raw encode passages/s (runs) | rerankkit passages/s (runs) | ratio |",
                "|---|---|---|---|---|"]
        for e in enc:
            out.append(f"| {e['dataset']} | {e['passages']} | {e['raw_mean']} ({', '.join(map(str, e['raw_pps']))}) | "
                       f"{e['ours_mean']} ({', '.join(map(str, e['ours_pps']))}) | {e['ratio']:.3f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["beir/scifact", "beir/nfcorpus"])
    ap.add_argument("--presets", nargs="+", default=["bm25", "bm25-lucene", "dense-minilm"])
    ap.add_argument("--encode-repeats", type=int, default=2, help="alternating raw/ours encode runs per dataset (0: skip)")
    ap.add_argument("--out", default="eval/retrieval.md")
    args = ap.parse_args()
    command = "PYTHONPATH=$PWD RERANKKIT_DATA=../shared/data HF_HUB_OFFLINE=1 python eval/retrieval_bench.py " + " ".join(
        a for a in sys.argv[1:])
    env = {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": round(os.getloadavg()[0], 1),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    rows, enc = [], []
    with tempfile.TemporaryDirectory(prefix="rerankkit-bench-") as tmp:
        for name in args.datasets:
            for preset in args.presets:
                rows.append(bench_engine(preset, name, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
        for name in args.datasets if args.encode_repeats else []:
            enc.append(bench_encode(name, Path(tmp), args.encode_repeats))
            print(json.dumps(enc[-1]), flush=True)
    env["load_after"] = round(os.getloadavg()[0], 1)
    Path(args.out).write_text(markdown(rows, enc, env, command), encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "encode": enc, "env": env}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
