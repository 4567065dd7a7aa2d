"""mxbai-rerank-v2 side by side with its authors' package, on a tiny random Qwen2 built in the session.

Reference: ``mxbai-rerank`` 0.1.6 from PyPI (``mxbai_rerank/mxbai_rerank_v2.py``; the same file as
mixedbread-ai/mxbai-rerank commit 8e709dca09e0fdba6bc7f6d4983940fdd1b783c5). It needs transformers 4
(``tokenizer.prepare_for_model``), so ``scripts/setup`` installs it in its own environment,
``.venv-ref-mxbai`` (CPU torch, transformers<5, mxbai-rerank); ``fidm_mxbai_oracle.py`` runs its
``MxbaiRerankV2`` there, unchanged, on the tiny model: input ids = chat prefix + "query: q" +
("\\n" + "document: d") + "\\n" + task prompt + chat suffix, every part tokenised on its own, the
document allowed up to 8,192 tokens with the query; score = logit("1") - logit("0") at the last
position. rerankkit's ``mxbai-rerank-base-v2`` preset must give the same ids and scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import fidm_tiny_qwen  # noqa: E402

from rerankkit import Doc, Query, Reranker  # noqa: E402

REF_PYTHON = Path(os.environ.get("RERANKKIT_REF_MXBAI_PYTHON", HERE.parents[1] / ".venv-ref-mxbai" / "bin" / "python"))
QUERY = "what is the capital of China?"
DOCS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.\n",
    "Cats sleep most of the day. Dogs bark at night; birds sing in the morning, don't they?",
    "Photosynthesis converts light energy into chemical energy. " * 60,  # longer than the old 512-token cut
    "query: document: 1 0?",
]


@pytest.fixture(scope="module")
def fidm_mxbai_reference(tmp_path_factory):
    if not REF_PYTHON.exists():
        pytest.skip(f"the reference environment is missing ({REF_PYTHON}); scripts/setup builds it")
    model_dir = fidm_tiny_qwen.build(tmp_path_factory.mktemp("fidm-mxbai-qwen2"), "qwen2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": ""}
    out = subprocess.run([str(REF_PYTHON), str(HERE / "fidm_mxbai_oracle.py"), str(model_dir)],
                         input=json.dumps({"query": QUERY, "docs": DOCS}), capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return model_dir, json.loads(out.stdout)


def test_input_ids_and_scores_equal_the_reference_package(fidm_mxbai_reference):
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator

    model_dir, ref = fidm_mxbai_reference
    r = Reranker("mxbai-rerank-base-v2", model=str(model_dir), dtype="fp32")
    be = r.backend
    ctx = QueryContext(be, Truncator(be, r.strategy.max_doc_tokens))
    for doc, want in zip(DOCS, ref["input_ids"]):
        [req] = r.strategy.requests(Query("q", QUERY), [Doc("d", doc)], ctx)
        assert be.encode(be.render(req.prompt)) == want
    ranking = r.rerank(Query("q", QUERY), [Doc(f"d{i}", t) for i, t in enumerate(DOCS)])
    got = {sd.docid: sd.score for sd in ranking.docs}
    for i, w in enumerate(ref["scores"]):
        assert got[f"d{i}"] == pytest.approx(w, abs=1e-4), i
