"""Golden: SmolLM2-135M (packaged GGUF) pointwise scores against an independent transformers forward."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dl19_first(data_root):
    with gzip.open(data_root / "trec-dl19-passage" / "bm25_dl19_top100.jsonl.gz", "rt") as f:
        first = json.loads(f.readline())
    return first["query"], [(h["docid"], h["content"]) for h in first["hits"][:12]]


@pytest.fixture(scope="module")
def reranker():
    from rerankkit import Reranker

    return Reranker("pointwise-smollm2-135m", dtype="fp32", batch_size=5, max_padding=1.0)  # mixed lengths per batch


def test_scores_equal_an_independent_forward_pass(reranker, dl19_first, smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit import Doc

    query, hits = dl19_first
    ranking = reranker.rerank(query, [Doc(d, t) for d, t in hits])
    got = {sd.docid: sd.score for sd in ranking.docs}

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    template = reranker.strategy.template
    yes = [tok(v, add_special_tokens=False)["input_ids"] for v in template.choices["1"]]
    no = [tok(v, add_special_tokens=False)["input_ids"] for v in template.choices["0"]]
    assert all(len(t) == 1 for t in yes + no)
    for docid, text in hits:
        messages = [{"role": "user", "content": template.fill("user", query=query, doc=text)}]
        rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1)
        y = np.logaddexp.reduce([float(lp[t[0]]) for t in yes])
        n = np.logaddexp.reduce([float(lp[t[0]]) for t in no])
        total = np.logaddexp(y, n)
        assert abs(got[docid] - ((y - total) - (n - total))) < 1e-4, docid


def test_batched_equals_one_at_a_time(reranker, dl19_first):
    from rerankkit import Doc

    query, hits = dl19_first
    docs = [Doc(d, t) for d, t in hits]
    batched = {sd.docid: sd.score for sd in reranker.rerank(query, docs).docs}
    for d in docs[:6]:
        alone = reranker.rerank(query, [d]).docs[0].score
        assert abs(alone - batched[d.docid]) < 1e-4


def test_import_light_and_offline_front_door(reranker):
    ranking = reranker.rerank("what is bm25?", ["BM25 is a bag-of-words ranking function.", "", "   "])
    assert sorted(ranking.docids) == ["0", "1", "2"]
    assert all(np.isfinite(d.score) for d in ranking.docs)
