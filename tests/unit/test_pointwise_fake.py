import subprocess
import sys

import numpy as np
import pytest

from rerankkit import CapabilityError, Doc, InputError, MissingExtraError, Query, Reranker, UnknownNameError
from rerankkit.backends.fake import OracleBackend, ScriptedBackend

DOCS = ["bm25 ranks documents by term statistics", "cats sleep a lot", "ranking functions score documents",
        "the weather is nice"]
REL = {DOCS[0]: 3, DOCS[1]: 0, DOCS[2]: 2, DOCS[3]: 1}


def test_oracle_gives_the_ideal_order():
    r = Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL))
    ranking = r.rerank("what is bm25", DOCS)
    assert [d.doc.text for d in ranking.docs] == sorted(DOCS, key=lambda t: -REL[t])
    assert ranking.metadata["model_calls"] == 4


def test_graded_template_uses_expected_relevance():
    r = Reranker("pointwise-graded", backend_instance=OracleBackend(REL))
    ranking = r.rerank("what is bm25", DOCS)
    assert [d.doc.text for d in ranking.docs] == sorted(DOCS, key=lambda t: -REL[t])
    assert all(0.0 <= d.score <= 2.0 for d in ranking.docs)


def test_scores_follow_the_log_odds_of_yes_and_no():
    # p(variant) given explicitly: score must be log(sum p yes variants) - log(sum p no variants)
    def score(text, choices):
        return [np.log(0.3) if c.strip().lower() == "yes" else np.log(0.1) if c.strip().lower() == "no" else -50.0
                for c in choices]

    r = Reranker("pointwise-yes-no", backend_instance=ScriptedBackend(score=score))
    s = r.rerank("q", ["d"]).docs[0].score
    # 4 yes variants of 0.3 and 4 no variants of 0.1
    assert s == pytest.approx(np.log(4 * 0.3) - np.log(4 * 0.1), abs=1e-9)


def test_bad_input():
    r = Reranker("pointwise-yes-no", backend_instance=OracleBackend({**REL, "": 0, "   ": 0}))
    assert len(r.rerank("q", [])) == 0
    ranking = r.rerank("q", [DOCS[0], "", "   "])
    assert sorted(ranking.docids) == ["0", "1", "2"]  # empty and whitespace docs are ranked, not dropped
    with pytest.raises(InputError, match="duplicate document id"):
        r.rerank("q", [Doc("a", "x"), Doc("a", "y")])
    with pytest.raises(UnknownNameError) as e:
        Reranker("pointwise-smolm2-135m")
    assert "pointwise-smollm2-135m" in e.value.suggestions


def test_over_long_documents_are_truncated_and_counted():
    long = " ".join(f"w{i}" for i in range(50))
    seen = []

    def score(text, choices):
        seen.append(text)
        return [0.0] * len(choices)

    r = Reranker("pointwise-yes-no", backend_instance=ScriptedBackend(score=score), max_doc_tokens=10)
    ranking = r.rerank("q", [long, "short doc"])
    assert ranking.metadata["truncated_docs"] == 1
    assert "w9\n" in seen[0] and "w10" not in seen[0]


def test_capability_mismatch_names_working_backends():
    gen_only = ScriptedBackend(generate=lambda t: "Yes")
    with pytest.raises(CapabilityError, match="hf"):
        Reranker("pointwise-yes-no", backend_instance=gen_only)


def test_rerank_run_keeps_the_tail_below_depth():
    from rerankkit import Ranking, Run

    q = Query("1", "q")
    docs = [Doc(str(i), t) for i, t in enumerate(DOCS)]
    run = Run([Ranking.from_order(q, docs, [0, 1, 2, 3])])
    out = Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL)).rerank_run(run, depth=3)
    assert out["1"].docids == ["0", "2", "1", "3"]  # top 3 reranked, doc 3 stays below them
    assert out.metadata["usage"]["model_calls"] == 3


def test_missing_extra_names_the_pip_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from rerankkit.backends.hf import HFBackend\n"
        "from rerankkit import MissingExtraError\n"
        "try:\n    HFBackend('x')\nexcept MissingExtraError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "rerankkit[hf]" in out
    assert issubclass(MissingExtraError, ImportError)


def test_import_rerankkit_loads_no_torch():
    code = "import sys, rerankkit; from rerankkit import Reranker; print(sorted(m for m in ('torch', 'transformers', 'vllm', 'faiss', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
