"""E²Rank with all-MiniLM-L6-v2 on DL19 BM25 top-100: quality and latency, side by side in one process.

Quality (nDCG@10, all 43 judged queries, the same 100 candidates each):
  bm25            the first-stage order
  cosine-minilm   plain MiniLM cosine between the query and each candidate
  e2rank-minilm   E²Rank recipe: the listwise prompt (query first, top-20 candidates) embedded as the query
  e2rank-plain    the same with the published part order (query last; MiniLM reads 256 tokens, so the
                  query is usually cut off) -- reported for transparency, not tuned on

Latency per query (same process, same candidates):
  e2rank cold     prompt + 100 document embeddings
  e2rank warm     prompt only: document vectors come from the call cache (Reranker(..., cache=PATH)), as when
                  they were embedded before by the same model and settings
  listwise window SmolLM2-135M (bf16) generating a permutation of one window of 20 with the RankZephyr
                  prompt through the hf backend directly (the listwise strategy is not on main yet);
                  a sliding window w20/s10 over 100 candidates needs 9 such windows per query.

    nice -n 10 python eval/bench_e2rank.py --threads 1 --out eval/results/e2rank_minilm_dl19.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rerankkit import Reranker
from rerankkit.backends.base import Prompt
from rerankkit.data import load_dataset
from rerankkit.eval import evaluate

RANKZEPHYR_SYSTEM = ("You are RankLLM, an intelligent assistant that can rank passages based on their relevancy "
                     "to the query")


def rankzephyr_prompt(query: str, passages: list[str]) -> Prompt:
    """The RankZephyr window prompt (castorini/rank_llm rank_zephyr_template), as on the listwise branch."""
    n = len(passages)
    head = (f"I will provide you with {n} passages, each indicated by a numerical identifier []. Rank the passages "
            f"based on their relevance to the search query: {query}.\n\n")
    body = "".join(f"[{i}] {p}\n" for i, p in enumerate(passages, start=1))
    tail = (f"Search Query: {query}.\nRank the {n} passages above based on their relevance to the search query. All "
            "the passages should be included and listed using identifiers, in descending order of relevance. The "
            "output format should be [] > [], e.g., [2] > [1], Answer concisely and directly and only respond with "
            "the ranking results, do not say any word or explain.")
    return Prompt.user(head + body + tail, system=RANKZEPHYR_SYSTEM)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--latency-queries", type=int, default=5, help="queries timed for listwise windows")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both models (1 on a crowded machine)")
    ap.add_argument("--dtype", default=None, help="MiniLM's dtype (default: the preset's, auto)")
    ap.add_argument("--out", default="eval/results/e2rank_minilm_dl19.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ds = load_dataset("trec-dl-2019/passage")
    run = ds.candidates().top(args.docs)
    items = [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]
    out: dict = {"queries": len(items), "docs_per_query": args.docs, "threads": torch.get_num_threads(),
                 "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                 "dtype": args.dtype or "preset default (auto)",
                 "ndcg@10": {"bm25": round(evaluate(run, ds)["nDCG@10"], 4)}, "latency_s_per_query": {}}

    cosine = Reranker("cosine-minilm", **({"dtype": args.dtype} if args.dtype else {}))
    backend = cosine.backend
    for name, kw in (("cosine-minilm", {"preset": "cosine-minilm"}),
                     ("e2rank-minilm", {"preset": "e2rank-minilm"}),
                     ("e2rank-plain", {"preset": "e2rank-minilm", "template": "e2rank-plain"})):
        kw = dict(kw)
        rr = Reranker(kw.pop("preset"), backend_instance=backend, **kw)
        reranked = rr.rerank_run(run)
        out["ndcg@10"][name] = round(evaluate(reranked, ds)["nDCG@10"], 4)
        print(name, out["ndcg@10"][name], flush=True)

    # latency: one query at a time
    cold = Reranker("e2rank-minilm", backend_instance=backend)
    with tempfile.TemporaryDirectory() as tmp:
        warm = Reranker("e2rank-minilm", backend_instance=backend, cache=Path(tmp) / "calls.sqlite")
        cold.rerank_many(items[:1])  # warm-up
        warm.rerank_many(items)  # fills the call cache with every candidate's vector (and the prompts)
        timed = Reranker("e2rank-minilm", backend_instance=backend, prompt_docs=19,
                                     cache=Path(tmp) / "calls.sqlite")  # new prompts, cached documents
        t_cold, t_warm = [], []
        for it in items:
            t = time.perf_counter()
            cold.rerank_many([it])
            t_cold.append(time.perf_counter() - t)
            before = timed.backend.usage.snapshot()["cached_calls"]
            t = time.perf_counter()
            timed.rerank_many([it])
            t_warm.append(time.perf_counter() - t)
            assert timed.backend.usage.snapshot()["cached_calls"] - before == len(it[1])
    out["latency_s_per_query"]["e2rank_minilm_cold"] = round(statistics.mean(t_cold), 4)
    out["latency_s_per_query"]["e2rank_minilm_warm_cache"] = round(statistics.mean(t_warm), 4)
    print("e2rank cold/warm", out["latency_s_per_query"], flush=True)

    lw = Reranker("pointwise-smollm2-135m", dtype="bf16").backend  # the hf backend with SmolLM2, bf16
    windows = []
    gen_tokens = []
    lw.generate([rankzephyr_prompt(items[0][0].text, [d.text for d in items[0][1][:20]])], 8)  # warm-up
    for q, docs in items[: args.latency_queries]:
        prompt = rankzephyr_prompt(q.text, [d.prompt_text() for d in docs[80:100]])  # the first (bottom) window
        t = time.perf_counter()
        g = lw.generate([prompt], max_new_tokens=120)[0]
        windows.append(time.perf_counter() - t)
        gen_tokens.append(g.generated_tokens)
        print("window", round(windows[-1], 2), "s", g.generated_tokens, "tokens:", repr(g.text[:80]), flush=True)
    per_window = statistics.mean(windows)
    out["latency_s_per_query"]["listwise_smollm2_one_window"] = round(per_window, 3)
    out["latency_s_per_query"]["listwise_smollm2_9_windows_estimate"] = round(9 * per_window, 3)
    out["listwise_generated_tokens_mean"] = round(statistics.mean(gen_tokens), 1)
    out["listwise_queries_timed"] = len(windows)
    out["speedup_e2rank_cold_vs_listwise_9_windows"] = round(9 * per_window / statistics.mean(t_cold), 1)
    print(json.dumps(out, indent=1))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
