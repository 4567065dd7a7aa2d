"""The backend protocol, checked the same way on every backend available here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from contract_cases import BACKENDS, DOCS, QUERY

from rerankkit.backends.base import Backend, Capability, Prompt, ScoreRequest

PROMPTS = [
    Prompt.user(f"Passage: {DOCS[0].text}\nQuery: {QUERY}\nDoes the passage answer the query? Answer 'Yes' or 'No'"),
    Prompt.user(f"Passage: {DOCS[3].text}\nQuery: {QUERY}\nDoes the passage answer the query? Answer 'Yes' or 'No'",
                system="You judge relevance."),
    Prompt.user("Which passage is better, A or B?", prefix="Passage"),
]
CHOICES = [("Yes", "No", " yes", " no"), ("Yes", "No"), (" A", " B")]


@pytest.fixture(params=BACKENDS)
def backend(request, make_backend) -> Backend:
    return make_backend(request.param)


def test_declares_a_protocol_backend(backend):
    assert isinstance(backend, Backend)
    assert backend.capabilities != Capability.NONE
    assert backend.capabilities in type(backend).capabilities  # declared once by the class; an instance only narrows
    json.dumps(backend.options())  # run metadata must serialise
    assert backend.name and isinstance(backend.model_id, str)


def test_render_contains_the_prompt(backend):
    text = backend.render(PROMPTS[0])
    assert PROMPTS[0].messages[-1].content in text
    assert backend.render(PROMPTS[2]).endswith("Passage")


def test_score_shapes_and_batch_independence(backend):
    if Capability.SCORE not in backend.capabilities:
        pytest.skip("no SCORE")
    reqs = [ScoreRequest(p, c) for p, c in zip(PROMPTS, CHOICES)]
    batched = backend.score(reqs)
    assert [len(x) for x in batched] == [len(c) for c in CHOICES]
    assert all(np.all(np.isfinite(x)) and np.all(x <= 0) for x in batched)
    single = [backend.score([r])[0] for r in reqs]
    for a, b in zip(batched, single):
        # differences between answers are what strategies use; they must not depend on the batch
        assert np.allclose(a - a[0], b - b[0], atol=2e-3)
    assert backend.score([]) == []


def test_generate_is_greedy_and_bounded(backend):
    if Capability.GENERATE not in backend.capabilities:
        pytest.skip("no GENERATE")
    a = backend.generate(PROMPTS[:2], max_new_tokens=6)
    b = backend.generate(PROMPTS[:2], max_new_tokens=6)
    assert [g.text for g in a] == [g.text for g in b]
    assert all(0 <= g.generated_tokens <= 6 and g.prompt_tokens > 0 for g in a)


def test_token_counting_and_truncation(backend):
    text = " ".join(d.text for d in DOCS)
    n = backend.count_tokens([text, ""])
    assert n[0] > 10 and n[1] == 0
    cut = backend.truncate(text, 12)
    assert backend.count_tokens([cut])[0] <= 12 and text.startswith(cut[:20])
    assert backend.truncate(DOCS[0].text, 10_000) == DOCS[0].text


def test_usage_is_counted(backend):
    if Capability.SCORE not in backend.capabilities:
        pytest.skip("no SCORE")
    before = backend.usage.snapshot()
    backend.score([ScoreRequest(PROMPTS[0], CHOICES[0])])
    after = backend.usage.snapshot()
    assert after["model_calls"] == before["model_calls"] + 1 and after["prompt_tokens"] > before["prompt_tokens"]


def test_embeddings_are_unit_rows_and_deterministic(backend):
    if Capability.EMBED not in backend.capabilities:
        pytest.skip("no EMBED")
    texts = [DOCS[0].text, DOCS[1].text, DOCS[0].text]
    v = backend.embed(texts)
    assert v.shape[0] == 3 and v.shape[1] > 1
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert np.allclose(v[0], v[2], atol=1e-5)
