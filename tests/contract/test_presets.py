"""Every preset builds (strategy, template, parameters, backend options and declared capabilities, all checked
without a model) and renders its first prompts: with its own backend where the model is local (the packaged
SmolLM2 and MiniLM), with the oracle backend where it is not (monoT5, mxbai, E2Rank 4B/8B, ...)."""

from __future__ import annotations

import pytest

from rerankkit import Doc, Query, Reranker
from rerankkit.backends import backend_class, create_backend
from rerankkit.backends.fake import OracleBackend
from rerankkit.presets import RERANKER_PRESETS
from rerankkit.strategies.lockstep import render_request

QUERY = Query("q1", "how do rivers form deltas")
DOCS = [Doc("d0", "A delta forms where a river deposits sediment as it slows."),
        Doc("d1", "Bread dough rises because yeast ferments sugars."),
        Doc("d2", "River deltas grow when the current drops its silt.")]
_BACKENDS: dict[tuple[str, str], object] = {}


def _local(model: str) -> bool:
    return model.startswith("packaged:")


def _backend(spec):
    """The preset's own backend for a local model (one per model and options), else the oracle."""
    if not _local(spec.model):
        return OracleBackend({d.text: 1.0 for d in DOCS})
    key = (spec.model, repr(sorted(spec.backend_options.items())))
    if key not in _BACKENDS:
        pytest.importorskip("torch")
        try:
            _BACKENDS[key] = create_backend(spec.backend, spec.model, **dict(spec.backend_options))
        except Exception as exc:  # noqa: BLE001 - a packaged model that is not installed here
            pytest.skip(f"{spec.model} is not available here: {exc}")
    return _BACKENDS[key]


def test_the_presets_the_issue_names_are_covered():
    assert {"monot5-base-msmarco", "monot5-3b-msmarco", "mxbai-rerank-base-v2", "e2rank-4b", "e2rank-8b"} <= set(
        RERANKER_PRESETS.names())


@pytest.mark.parametrize("name", RERANKER_PRESETS.names())
def test_every_preset_builds_and_renders_its_prompt(name):
    spec = RERANKER_PRESETS.get(name)
    # every parameter, option and declared capability checked, nothing loaded; a preset for any model
    # (pointwise-yes-no, rankgpt) is given one
    reranker = Reranker(name, **({} if spec.model else {"model": "some/model"}))
    assert reranker._backend is None
    assert reranker.strategy.required_capabilities() in backend_class(spec.backend).capabilities
    backend = _backend(spec)
    ready = Reranker(name, backend_instance=backend)
    requests = ready.strategy.first_requests(QUERY, DOCS, backend)
    assert requests, name
    texts = [render_request(backend, r) for r in requests]  # as `rerankkit prompt render` prints them
    assert all(isinstance(t, str) and t.strip() for t in texts), name
    rendered = "\n".join(texts)
    assert QUERY.text in rendered or reranker.strategy.name == "embedding", name  # cosine: the query is embedded alone
    assert any(d.text in rendered for d in DOCS), name
    if spec.model == "packaged:smollm2-135m-instruct":  # its own tokenizer's chat template, not plain text
        assert "<|im_start|>user" in rendered, name
