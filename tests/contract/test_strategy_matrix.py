"""Every registered strategy, with every template written for it, over every available backend that has
the capabilities it declares: a full permutation, deterministic, with call counts; a backend that lacks a
capability is refused before any model call."""

from __future__ import annotations

import numpy as np
import pytest
from contract_cases import BACKENDS, DOCS, QUERY, RELEVANCE

from rerankkit.errors import CapabilityError
from rerankkit.options import names
from rerankkit.prompts.template import load_template, template_names
from rerankkit.strategies import STRATEGIES
from rerankkit.types import Query

# small settings so the matrix stays fast on a real model (and small windows so listwise slides); the
# algorithms are the same
FAST = {"k": 2, "max_doc_tokens": 48, "window": 4, "stride": 2, "num_child": 2, "max_new_tokens": 12}


def combos() -> list[tuple[str, str]]:
    out = []
    for name in STRATEGIES.names():
        for t in template_names():
            if load_template(t).strategy == name:
                out.append((name, t))
    return out


def build(strategy: str, template: str):
    cls = STRATEGIES.get(strategy)
    declared = names(cls.Params)
    return cls(load_template(template), {k: v for k, v in FAST.items() if k in declared})


def test_every_strategy_has_a_template():
    assert {s for s, _ in combos()} == set(STRATEGIES.names())


def test_every_fast_setting_is_a_real_parameter():
    """A key no strategy declares would be dropped by build() and test nothing."""
    declared = {n for _, cls in STRATEGIES.items() for n in names(cls.Params)}
    assert set(FAST) <= declared, set(FAST) - declared


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("strategy,template", combos())
def test_strategy_runs_on_backend(make_backend, backend_name, strategy, template):
    backend = make_backend(backend_name)
    strat = build(strategy, template)
    if strat.required_capabilities() & ~backend.capabilities:
        with pytest.raises(CapabilityError):
            strat.check_backend(backend)
        return
    if backend_name != "oracle" and template in ("monot5",):
        pytest.skip("monoT5's prompt is for seq2seq models")
    q = Query("q1", QUERY)
    docs = DOCS[:3] if backend_name == "openai" else DOCS  # a real model over HTTP on 2 cores: keep it short
    first = strat.rerank_many(backend, [(q, docs)])[0]
    assert sorted(first.docids) == sorted(d.docid for d in docs)
    assert all(np.isfinite(sd.score) for sd in first.docs)
    assert first.metadata["model_calls"] > 0
    if "window" in names(type(strat).Params) and len(docs) > FAST["window"]:
        assert first.metadata["windows"] > 1  # the small window really slides
    again = strat.rerank_many(backend, [(q, docs)])[0]
    assert again.docids == first.docids
    if backend_name == "oracle":  # a perfect judge puts the most relevant document first
        assert first.docids[0] == max(RELEVANCE, key=RELEVANCE.get)
