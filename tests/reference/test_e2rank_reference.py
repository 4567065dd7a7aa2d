"""E²Rank side by side with its official evaluation code, on a tiny random Qwen3 built in the session.

Reference: Alibaba-NLP/E2Rank at commit 478f298e04cc03b643c715b258e66f3741dfd694 (not on a package
registry, so not importable here): ``src/eval.py`` ``EvalModel.__call__`` cuts every document to its
first 1,024 whitespace words (``" ".join(x.split()[:1024])``), lists the first 20 as ``[i] doc`` joined
by newlines in ``listwise_prompt_template``, applies the chat template to that user message
(``add_generation_prompt=True, enable_thinking=False``, no end-of-text token), embeds each document
with ``<|endoftext|>`` appended, pools the last token (``PoolerConfig(pooling_type="LAST",
normalize=True)``), and ranks by the dot product. The README's transformers recipe (left padding,
``last_token_pool``, ``F.normalize``) is that pooling outside vLLM; the oracle below follows it step
by step. The prompt strings are checked against the reference's by their sha256.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))

import fidm_tiny_qwen  # noqa: E402

from rerankkit import Doc, Query, Reranker  # noqa: E402
from rerankkit.prompts.template import load_template  # noqa: E402

# sha256 of src/eval.py's listwise_prompt_template and of EVAL_PROMPTS["dl19"][1] at the commit above
LISTWISE_SHA = "88706afd11735da0eda786daa3f9bf90a9ebc98797ccc3ede7854b74a23a66ec"
QUERY_SHA = "1ee56a1f24972455c8edf49c2506b6ad29fafdcd4c0f45855c5d6c0ef9b87400"

QUERY = "what is the capital of china?"
DOCS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.\n\nIt gives weight to objects.",
    "Cats sleep most of the day.   Dogs bark at night; birds sing in the morning.",
    "Beijing " + "is a very large city " * 300 + "in the north.",  # over 1,024 words: cut
    "Photosynthesis converts light energy into chemical energy.",
]


@pytest.fixture(scope="module")
def fidm_e2rank_dir(tmp_path_factory):
    return fidm_tiny_qwen.build(tmp_path_factory.mktemp("fidm-e2rank-qwen3"), "qwen3")


def _reference_scores(model_dir, query: str, docs: list[str], template: str, n_prompt: int = 20) -> list[float]:
    """The reference's procedure, step by step, with the README's transformers pooling."""
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModel.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    docs = [" ".join(x.split()[:1024]) for x in docs]
    listed = "\n".join(f"[{i}] {d}" for i, d in enumerate(docs[:n_prompt], start=1))
    text = template.replace("{documents}", listed).replace("{query}", query)
    pseudo_query = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True, enable_thinking=False)
    inputs = [pseudo_query] + [d + "<|endoftext|>" for d in docs]
    batch = tok(inputs, padding=True, truncation=True, max_length=8192, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert bool(batch["attention_mask"][:, -1].all())  # left padding: the last position is every text's last token
    emb = F.normalize(hidden[:, -1], p=2, dim=1)
    return (emb[:1] @ emb[1:].T).flatten().tolist()


def test_prompt_strings_are_the_references():
    tpl = load_template("e2rank")
    assert hashlib.sha256(tpl.parts["user"].encode()).hexdigest() == LISTWISE_SHA
    assert hashlib.sha256(tpl.parts["query"].removesuffix("<|endoftext|>").encode()).hexdigest() == QUERY_SHA
    assert tpl.fill("item", id=3, doc="x") == "[3] x" and tpl.extra["item_separator"] == "\n"
    assert tpl.extra["doc_suffix"] == "<|endoftext|>"


def test_e2rank_scores_equal_the_reference_procedure(fidm_e2rank_dir):
    ref = _reference_scores(fidm_e2rank_dir, QUERY, DOCS, load_template("e2rank").parts["user"])
    r = Reranker("e2rank-0.6b", model=str(fidm_e2rank_dir), dtype="fp32")
    ranking = r.rerank(Query("q", QUERY), [Doc(f"d{i}", t) for i, t in enumerate(DOCS)])
    ours = {sd.docid: sd.score for sd in ranking.docs}
    for i, want in enumerate(ref):
        assert ours[f"d{i}"] == pytest.approx(want, abs=1e-5)
    assert ranking.docids == [f"d{i}" for i in sorted(range(len(ref)), key=lambda i: -ref[i])]
    # the prompt lists the first prompt_docs candidates, cut the same way
    seen = r.backend.render(r.strategy.query_request(Query("q", QUERY), [" ".join(t.split()[:1024]) for t in DOCS]).text)
    assert "[2] Gravity is a force that attracts two bodies towards each other. It gives weight" in seen
    assert seen.endswith("Search Query: " + QUERY + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_only_the_first_prompt_docs_are_listed(fidm_e2rank_dir):
    ref = _reference_scores(fidm_e2rank_dir, QUERY, DOCS, load_template("e2rank").parts["user"], n_prompt=2)
    r = Reranker("e2rank-0.6b", model=str(fidm_e2rank_dir), dtype="fp32", prompt_docs=2)
    ranking = r.rerank(Query("q", QUERY), [Doc(f"d{i}", t) for i, t in enumerate(DOCS)])
    ours = {sd.docid: sd.score for sd in ranking.docs}
    assert [ours[f"d{i}"] for i in range(len(ref))] == pytest.approx(ref, abs=1e-5)
