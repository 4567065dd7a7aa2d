"""32 concurrent ``arerank`` calls vs 32 sequential ``rerank`` calls against a real llama.cpp server.

The packaged SmolLM2-135M GGUF behind llama-cpp-python's OpenAI-compatible server on 127.0.0.1; the
``pointwise-smollm2-135m`` preset over the ``openai`` backend (prompts rendered here with the packaged
tokenizer's chat template). The first ``--queries`` TREC DL19 queries, each with its BM25 top ``--docs``:

  sequential  ``for q in queries: reranker.rerank(q, docs)`` (each call sends its documents
              ``max_concurrency`` at a time, then waits for the next call)
  concurrent  ``await asyncio.gather(*(reranker.arerank(q, docs) for q in queries))`` (httpx.AsyncClient,
              at most ``max_concurrency`` requests in flight over all the calls)

Both run ``--repeats`` times, alternating, so machine load hits both alike. The rankings must be the same
(docids in the same order for every query; the largest score difference is reported); the wall times are
the medians. Writes JSON.

    python eval/async_llama.py --out eval/results/async_llama.json                        # 32 queries x 5 docs
    python eval/async_llama.py --queries 2 --docs 3 --repeats 1 --out /tmp/async_slice.json   # a check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from llama_server import llama_server  # noqa: E402

from rerankkit import Reranker  # noqa: E402
from rerankkit.data import load_dataset  # noqa: E402
from rerankkit.models import packaged_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--docs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--max-concurrency", type=int, default=8, help="requests in flight (the openai backend)")
    ap.add_argument("--out", default="eval/results/async_llama.json")
    args = ap.parse_args()

    run = load_dataset("trec-dl-2019/passage").candidates().head(args.queries).top(args.docs)
    items = [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]
    with llama_server(packaged_path("smollm2-135m-instruct"), threads=args.threads) as url:
        reranker = Reranker("pointwise-smollm2-135m", backend="openai", base_url=url,
                            model="packaged:smollm2-135m-instruct", max_concurrency=args.max_concurrency)
        reranker.rerank(*items[0])  # warm-up: server caches, tokenizer, connection pool

        def sequential():
            return [reranker.rerank(q, docs) for q, docs in items]

        async def concurrent():
            return await asyncio.gather(*(reranker.arerank(q, docs) for q, docs in items))

        walls: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        outs: dict[str, list] = {}
        for _ in range(args.repeats):
            for name in ("sequential", "concurrent"):
                t = time.perf_counter()
                outs[name] = sequential() if name == "sequential" else asyncio.run(concurrent())
                walls[name].append(time.perf_counter() - t)
                print(name, round(walls[name][-1], 2), flush=True)
        same = all(a.docids == b.docids for a, b in zip(outs["sequential"], outs["concurrent"]))
        delta = max(abs(x.score - y.score) for a, b in zip(outs["sequential"], outs["concurrent"])
                    for x, y in zip(a.docs, b.docs))
        reranker.close()
    seq, con = statistics.median(walls["sequential"]), statistics.median(walls["concurrent"])
    report = {"queries": len(items), "docs_per_query": args.docs, "requests_per_pass": sum(len(d) for _, d in items),
              "llama_threads": args.threads, "max_concurrency": args.max_concurrency, "repeats": args.repeats,
              "wall_s": walls, "median_sequential_s": round(seq, 2), "median_concurrent_s": round(con, 2),
              "speedup": round(seq / con, 2), "same_rankings": same, "max_abs_score_diff": delta}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    if not same:
        raise SystemExit("the concurrent rankings differ from the sequential ones")


if __name__ == "__main__":
    main()
