"""PRP and setwise through the real transformers backend with tiny random models (causal and seq2seq)."""

from __future__ import annotations

import pytest

from rerankkit.backends import create_backend
from rerankkit.prompts.template import load_template
from rerankkit.strategies import STRATEGIES
from rerankkit.types import Doc, Query

pytest.importorskip("transformers")

ITEMS = [
    (Query(f"q{i}", f"question number {i} about rivers"),
     [Doc(f"q{i}d{j}", f"passage {j} for query {i}: " + "water flows downhill " * (j % 3 + 1)) for j in range(6)])
    for i in range(2)
]
VARIANTS = [("pairwise", "prp", m, mode) for m in ("allpair", "heapsort", "sliding") for mode in ("score", "generate")] + [
    ("setwise", "setwise", m, mode) for m in ("heapsort", "bubblesort") for mode in ("score", "generate")]


@pytest.fixture(scope="module")
def causal(tiny_causal_dir):
    return create_backend("hf", str(tiny_causal_dir), dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def seq2seq(tiny_seq2seq_dir):
    return create_backend("hf", str(tiny_seq2seq_dir), dtype="fp32", device="cpu")


@pytest.mark.parametrize("strategy,template,method,mode", VARIANTS)
def test_causal_lockstep_equals_one_query_at_a_time(causal, strategy, template, method, mode):
    check(causal, strategy, template, method, mode)


@pytest.mark.parametrize("strategy,template,method,mode", [
    ("pairwise", "prp", "sliding", "score"), ("pairwise", "prp", "heapsort", "generate"),
    ("setwise", "setwise", "heapsort", "score")])
def test_seq2seq_lockstep_equals_one_query_at_a_time(seq2seq, strategy, template, method, mode):
    check(seq2seq, strategy, template, method, mode)


def check(backend, strategy, template, method, mode):
    strat = STRATEGIES.get(strategy)(load_template(template), {"method": method, "mode": mode, "k": 3,
                                                                 "max_new_tokens": 3})
    together = strat.rerank_many(backend, ITEMS)
    alone = [strat.rerank_many(backend, [it])[0] for it in ITEMS]
    for (_, docs), a, b in zip(ITEMS, together, alone):
        assert sorted(a.docids) == sorted(d.docid for d in docs)
        assert a.docids == b.docids
        assert a.metadata["model_calls"] == b.metadata["model_calls"] > 0
        if mode == "generate":
            assert a.metadata["unparsed"] == b.metadata["unparsed"]
