"""Retrieval benchmark: index build time, queries/s, nDCG@10 and R@100 per engine on BEIR SciFact and
NFCorpus, and dense encoding speed next to raw sentence-transformers ``encode`` on the same texts.

    PYTHONPATH=$PWD RERANKKIT_DATA=/path/to/shared/data HF_HUB_OFFLINE=1 \
        python eval/retrieval_bench.py --out eval/retrieval.md

Every index is built fresh in a temporary cache (the build time is a real build), then searched
with k=100 for all test queries. Encoding speed: raw ``SentenceTransformer.encode`` is timed right
before and right after rerankkit's dense index build, on the same texts with the same batch size,
so machine load drifts hit both alike.
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


def raw_encode_pps(name: str) -> tuple[int, float]:
    """passages/s of plain ``SentenceTransformer.encode`` on the texts rerankkit's dense index embeds."""
    from sentence_transformers import SentenceTransformer

    from rerankkit.retrievers.dense import resolve_model

    texts = [" ".join(p for p in (d.title, d.text) if p) for d in load_dataset(name).corpus()]
    model = SentenceTransformer(resolve_model("packaged:all-minilm-l6-v2"), device="cpu")
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return len(texts), len(texts) / (time.perf_counter() - t0)


def bench_dense_with_raw(name: str, cache: Path) -> tuple[dict, dict]:
    """Raw encode, rerankkit's dense-minilm build, raw encode again: load drifts hit both alike."""
    n, before = raw_encode_pps(name)
    row = bench_engine("dense-minilm", name, cache)
    _, after = raw_encode_pps(name)
    raw = [round(before, 1), round(after, 1)]
    ours = float(row["build"]["passages_per_s"])
    return row, {"dataset": name, "passages": n, "raw_pps": raw, "raw_mean": round(statistics.mean(raw), 1),
                 "ours_pps": [round(ours, 1)], "ours_mean": round(ours, 1),
                 "ratio": round(ours / statistics.mean(raw), 3)}


def markdown(rows: list[dict], enc: list[dict], env: dict, command: str) -> str:
    out = ["# Retrieval benchmark (BEIR SciFact and NFCorpus, test split)", "",
           f"Command: `{command}`", "",
           f"Machine: {env['cpus']} CPU cores, {env['platform']}; load average before/after: "
           f"{env['load_before']} / {env['load_after']} (other jobs shared the cores, so absolute speeds are far "
           f"below an idle machine's; compare numbers within this table). Date: {env['date']}.", "",
           "Index time = a fresh build (documents read, fingerprinted, indexed, checksummed). Queries/s = all test "
           "queries searched at k=100 in one call (Lucene: includes starting the JVM). nDCG@10 and R@100 with "
           "ir-measures; queries with no hit count as 0.", "",
           "| dataset | engine (preset) | docs | queries | index s | queries/s | nDCG@10 | R@100 | pyserini BM25 flat nDCG@10 |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['dataset']} | {r['preset']} | {r['docs']} | {r['queries']} | {r['index_s']:.2f} | "
                   f"{r['qps']:.1f} | {r['ndcg10']:.4f} | {r['r100']:.4f} | "
                   f"{PUBLISHED.get(r['dataset'], '') if r['preset'].startswith('bm25') else ''} |")
    if enc:
        out += ["", "## Dense encoding speed (all-MiniLM-L6-v2, batch 64, fp32, CPU)", "",
                "Raw `SentenceTransformer.encode` runs right before and right after rerankkit's `dense-minilm` index "
                "build on the same title+text passages (same batch size, normalised); rerankkit's number is the "
                "encode part of its build (the same build as in the table above).", "",
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
    ap.add_argument("--no-raw", action="store_true", help="skip the raw sentence-transformers encode comparison")
    ap.add_argument("--out", default="eval/retrieval.md")
    ap.add_argument("--render", metavar="JSON", help="only rewrite --out from a JSON file of an earlier run")
    args = ap.parse_args()
    if args.render:
        data = json.loads(Path(args.render).read_text())
        Path(args.out).write_text(markdown(data["rows"], data["encode"], data["env"], data["command"]))
        return
    command = "PYTHONPATH=$PWD RERANKKIT_DATA=../shared/data HF_HUB_OFFLINE=1 python eval/retrieval_bench.py " + " ".join(
        a for a in sys.argv[1:])
    env = {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": round(os.getloadavg()[0], 1),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    rows, enc = [], []
    with tempfile.TemporaryDirectory(prefix="rerankkit-bench-") as tmp:
        for name in args.datasets:
            for preset in args.presets:
                if preset == "dense-minilm" and not args.no_raw:
                    row, e = bench_dense_with_raw(name, Path(tmp))
                    enc.append(e)
                    print(json.dumps(e), flush=True)
                else:
                    row = bench_engine(preset, name, Path(tmp))
                rows.append(row)
                print(json.dumps(row), flush=True)
    env["load_after"] = round(os.getloadavg()[0], 1)
    Path(args.out).write_text(markdown(rows, enc, env, command), encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(
        json.dumps({"rows": rows, "encode": enc, "env": env, "command": command}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
