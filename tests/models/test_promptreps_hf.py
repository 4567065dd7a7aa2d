"""PromptReps encoding through the real hf REPRESENT path on a tiny random causal model (fp32)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

from rerankkit import CapabilityError  # noqa: E402
from rerankkit.backends.fake import OracleBackend  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402
from rerankkit.reps import PromptRepsEncoder, PromptRepsIndex  # noqa: E402
from rerankkit.reps.sparse import term_weights, text_words  # noqa: E402

TEXTS = ["Cats purr when they are content.", "", "   ", "\u200b", "the of and",
         "Quantum chromodynamics describes the strong interaction. " * 30]


@pytest.fixture(scope="module")
def encoder(tiny_causal_dir):
    be = HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=4)
    return PromptRepsEncoder(be, max_text_tokens=64, chunk_size=4)


def test_prompt_is_the_published_one_with_the_prefilled_assistant_turn(encoder):
    from rerankkit.backends.base import without_breaks

    rendered = encoder.backend.render(encoder.prompt("a passage"))
    assert "You are an AI assistant that can understand human language." in rendered
    assert ('Passage: "a passage". Use one word to represent the passage in a retrieval task. '
            "Make sure your word is in lowercase.") in without_breaks(rendered)
    assert rendered.endswith('<|im_start|>assistant\nThe word is: "')
    assert 'Query: "q". Use one word to represent the query in a retrieval task' in without_breaks(
        encoder.backend.render(encoder.prompt("q", "query")))


def test_every_text_gets_dense_and_sparse_vectors_even_when_it_tokenizes_to_nothing(encoder):
    reps = encoder.encode(TEXTS)
    assert reps.dense.shape == (len(TEXTS), 64)
    assert np.allclose(np.linalg.norm(reps.dense, axis=1), 1.0, atol=1e-5)
    assert all(reps.sparse.getrow(i).nnz > 0 for i in range(len(TEXTS)))
    assert reps.fallbacks == 4  # "", "   ", zero-width space, stopwords only
    # the sparse terms of a normal text are tokens of its own words, weighted by log(1 + relu(logit))
    tok = encoder.backend.tokenizer
    own = {i for w in text_words(TEXTS[0]) for i in tok(w, add_special_tokens=False)["input_ids"]}
    row = reps.sparse.getrow(0)
    assert set(row.indices.tolist()) <= own
    hidden, logits = encoder.backend.represent([encoder.prompt(TEXTS[0])])
    w = term_weights(logits[0])
    assert np.allclose(row.data, np.rint(w[row.indices] * 100))
    assert np.allclose(reps.dense[0], hidden[0] / np.linalg.norm(hidden[0]), atol=1e-5)


def test_long_texts_are_cut_and_chunking_does_not_change_vectors(encoder, tiny_causal_dir):
    one = PromptRepsEncoder(encoder.backend, max_text_tokens=64, chunk_size=1).encode(TEXTS)
    all_ = encoder.encode(TEXTS)
    assert np.allclose(one.dense, all_.dense, atol=1e-4)
    assert (one.sparse != all_.sparse).nnz == 0


def test_search_over_encoded_documents(encoder):
    docs = ["apples and pears are fruit", "the moon orbits the earth", "python is a programming language"]
    index = PromptRepsIndex.from_reps(encoder.encode(docs))
    queries = encoder.encode(docs, "query")
    for hits, q in zip(index.search(queries, k=3, mode="dense"), queries.dense):
        assert [s for _, s in hits] == pytest.approx(sorted((float(q @ d) for d in index.dense), reverse=True),
                                                     abs=1e-5)
    for hits in index.search(queries, k=3, mode="hybrid"):
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        assert len({i for i, _ in hits}) == len(hits) <= 3


def test_needs_represent():
    with pytest.raises(CapabilityError, match="REPRESENT"):
        PromptRepsEncoder(OracleBackend({"a": 1}))
