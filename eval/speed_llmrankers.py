"""The llm-rankers side of eval/speed.py table (b): a long-lived worker timing one query at a time.

Runs in its own process (llm-rankers seeds the global ``random`` on import and prints as it goes) and never
imports rerankkit. It reuses the side-by-side harness of the reference tier, ``tests/reference/
llmrankers_side.py`` (its transformers-5 patches and its ranker construction), so both measure the same
unmodified rankers. Protocol, one JSON object a line: the first line on stdin is
``{"model": folder, "threads": n, "query_length": 32, "passage_length": 128}``; the worker loads the PRP and
setwise rankers in fp32 (llm-rankers' only CPU type) and a copy cast to bf16, answers ``{"ready": true}``, then
for each request ``{"ranker": "pairwise"|"setwise", "method", "k", "num_child", "dtype": "fp32"|"bf16",
"query", "docs": [[docid, text], ...]}`` answers ``{"ranking": [...], "wall_s": ..., "cpu_s": ...,
"compares": ...}``. Timing covers ``ranker.rerank`` only: the query and passages are cut with the ranker's
own ``truncate`` before it, as its run.py does.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reference"))


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # llm-rankers prints; only the protocol goes to the real stdout
    spec = json.loads(sys.stdin.readline())
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    import llmrankers_side as side  # tests/reference (the reference tier's harness)

    state = random.getstate()
    side.patch_transformers()
    from llmrankers.rankers import SearchResult

    random.setstate(state)
    rankers = {}
    for ranker in ("pairwise", "setwise"):
        case = {"ranker": ranker, "method": "heapsort", "k": 10, "num_child": 3, "scoring": "generation"}
        rankers[ranker, "fp32"] = side.build(case, spec["model"])
        bf16 = side.build(case, spec["model"])
        bf16.llm = bf16.llm.to(torch.bfloat16)  # the cast: llm-rankers itself loads fp32 on CPU
        rankers[ranker, "bf16"] = bf16
    proto.write(json.dumps({"ready": True, "dtypes": {f"{k[0]}-{k[1]}": str(r.llm.dtype) for k, r in rankers.items()}})
                + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        ranker = rankers[req["ranker"], req["dtype"]]
        ranker.method, ranker.k = req["method"], req["k"]
        if req["ranker"] == "setwise":
            ranker.num_child = req["num_child"]
        query = ranker.truncate(req["query"], spec["query_length"])
        docs = [SearchResult(docid=d, score=0.0, text=ranker.truncate(t, spec["passage_length"]))
                for d, t in req["docs"]]
        ranker.total_compare = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        ranked = ranker.rerank(query, docs)  # as shipped: its generate() runs without autograd
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        proto.write(json.dumps({"ranking": [d.docid for d in ranked], "wall_s": wall, "cpu_s": cpu,
                                "compares": ranker.total_compare}) + "\n")


if __name__ == "__main__":
    main()
