"""Run llm-rankers' PRP (heapsort / bubblesort) on given candidates; print timings as JSON.

Runs inside a SEPARATE venv with llm-rankers (see eval/pairwise.md for its setup); it does not
import rerankkit. ``pairwise_bench.py`` calls it as a subprocess with a JSON file of candidates:

    /tmp/llmr-venv/bin/python eval/pairwise_llmrankers.py --model MODEL_FOLDER --items items.json \
        --method heapsort --k 10 --dtype bf16 --threads 1 --out out.json

Patches (applied only here, at run time; llm-rankers itself is not modified):
- dtype: llm-rankers loads ``float16 if device == 'cuda' else float32``; to compare at the same
  precision as rerankkit we wrap ``AutoModelForCausalLM.from_pretrained`` in llm-rankers' module to
  pass ``dtype=<--dtype>`` instead. With ``--dtype fp32`` nothing is patched.
Nothing else was needed for llama-architecture PRP heapsort/bubblesort on transformers 5.24
(``accelerate`` must be installed for its ``device_map='auto'``).
Passages are truncated to 128 tokens with the ranker's own ``truncate`` (as its run.py does).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--items", required=True, help="JSON list of {qid, query, docs: [[docid, text], ...]}")
    ap.add_argument("--method", default="heapsort", choices=["heapsort", "bubblesort"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--passage-length", type=int, default=128)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import llmrankers.pairwise as pw
    from llmrankers.rankers import SearchResult

    if args.dtype == "bf16":
        original = pw.AutoModelForCausalLM.from_pretrained

        class _BF16:
            @staticmethod
            def from_pretrained(*a, **kw):
                kw.pop("torch_dtype", None)
                kw["dtype"] = torch.bfloat16
                return original(*a, **kw)

        pw.AutoModelForCausalLM = _BF16  # patch: the module-level name llm-rankers calls

    ranker = pw.PairwiseLlmRanker(args.model, None, "cpu", method=args.method, k=args.k)
    with open(args.items) as f:
        items = json.load(f)
    prepared = [
        (it["qid"], it["query"],
         [SearchResult(docid=d, score=0.0, text=ranker.truncate(t, args.passage_length)) for d, t in it["docs"]])
        for it in items
    ]
    out = {"method": args.method, "k": args.k, "dtype": args.dtype, "threads": args.threads, "queries": []}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for qid, query, docs in prepared:
        t0, c0 = time.perf_counter(), time.process_time()
        ranked = ranker.rerank(query, docs)
        out["queries"].append({
            "qid": qid, "ranking": [d.docid for d in ranked], "comparisons": ranker.total_compare,
            "prompt_tokens": ranker.total_prompt_tokens, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
        })
    out["wall_s"] = time.perf_counter() - wall0
    out["cpu_s"] = time.process_time() - cpu0
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
