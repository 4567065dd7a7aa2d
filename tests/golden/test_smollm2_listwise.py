"""Golden: FIRST with SmolLM2-135M (packaged GGUF) on a real DL19 window equals an independent forward."""

from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("torch")


def test_first_window_order_equals_an_independent_forward(data_root, smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit import Doc, Query, Reranker
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator

    with gzip.open(data_root / "trec-dl19-passage" / "bm25_dl19_top100.jsonl.gz", "rt") as f:
        first = json.loads(f.readline())
    query, hits = first["query"], first["hits"][:5]
    docs = [Doc(h["docid"], h["content"]) for h in hits]
    rr = Reranker("first-smollm2-135m", dtype="fp32")
    ranking = rr.rerank(query, docs)
    assert ranking.metadata["model_calls"] == 1

    letters = "ABCDE"
    backend = rr.backend
    prompt, _ = rr.strategy.window_prompt(Query("q", query), docs, QueryContext(backend, Truncator(backend, None)))
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    msgs = [{"role": m.role, "content": m.content} for m in prompt.messages]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + "["
    assert rendered == backend.render(prompt)
    ids = tok(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
    kth = float(torch.topk(logp, 30).values[-1])  # rank_llm reads the 30 most likely tokens
    lv = [float(logp[tok.convert_tokens_to_ids(c)]) for c in letters]
    key = [(-v if v >= kth else float("inf"), i) for i, v in enumerate(lv)]
    assert ranking.docids == [docs[i].docid for _, i in sorted(key)]
