"""Runs the reference mxbai-rerank package (in its own environment: it needs transformers 4).

``python fidm_mxbai_oracle.py MODEL_DIR`` reads ``{"query": ..., "docs": [...]}`` on stdin and prints
``{"scores": [...], "input_ids": [[...], ...]}``: ``MxbaiRerankV2.predict`` and the unpadded ids of
``MxbaiRerankV2.prepare_inputs`` for each (query, document) pair.
"""

from __future__ import annotations

import json
import sys

import torch
from mxbai_rerank import MxbaiRerankV2


def main() -> None:
    job = json.load(sys.stdin)
    model = MxbaiRerankV2(sys.argv[1], device="cpu", torch_dtype=torch.float32)
    queries = [job["query"]] * len(job["docs"])
    scores = model.predict(queries, job["docs"]).tolist()
    ids = []
    for doc in job["docs"]:
        batch = model.prepare_inputs([job["query"]], [doc])
        ids.append(batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist())
    json.dump({"scores": scores, "input_ids": ids}, sys.stdout)


if __name__ == "__main__":
    main()
