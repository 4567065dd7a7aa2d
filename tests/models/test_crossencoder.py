"""Cross-encoders: a tiny random BertForSequenceClassification built in the session, scored through
rerankkit and through sentence-transformers' CrossEncoder.predict on the same pairs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

QUERY = "how do vaccines train the immune system?"
DOCS = [
    "Vaccines expose the immune system to a harmless antigen so it learns to recognise the pathogen.",
    "The stock market closed higher on Friday.",
    "Antibodies produced after vaccination remember the antigen for years.",
    "A recipe for lemon cake with three eggs.",
    "Immune memory: B cells and T cells trained by vaccines respond faster to a later infection. " * 6,
]


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory):
    """A 2-layer random BERT sequence classifier (one label) with all-MiniLM-L6-v2's WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rerankkit.models import packaged_path

    try:
        tok = AutoTokenizer.from_pretrained(packaged_path("all-minilm-l6-v2"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged MiniLM not installed: {exc}")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=128, num_labels=1)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # a visible spread of logits
        model.classifier.weight.mul_(40.0)
    out = tmp_path_factory.mktemp("tiny-cross-encoder")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _reference(path, pairs, activation):
    import torch
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(path), device="cpu", max_length=128)
    fn = torch.nn.Identity() if activation == "none" else None  # None: CrossEncoder's default (sigmoid, 1 label)
    return np.asarray(ce.predict(pairs, batch_size=2, activation_fn=fn), dtype=np.float64)


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_scores_equal_crossencoder_predict(tiny_cross_encoder_dir, activation):
    from rerankkit import Reranker

    r = Reranker("cross-encoder", model=str(tiny_cross_encoder_dir), activation=activation, batch_size=2,
                 max_length=128, dtype="fp32")
    ranking = r.rerank(QUERY, DOCS)
    got = {int(sd.docid): sd.score for sd in ranking.docs}
    ref = _reference(tiny_cross_encoder_dir, [(QUERY, d) for d in DOCS], activation)
    assert np.max(np.abs(np.array([got[i] for i in range(len(DOCS))]) - ref)) < 1e-5
    assert [int(d) for d in ranking.docids] == sorted(range(len(DOCS)), key=lambda i: (-ref[i], i))
    assert len(set(np.round(ref, 4))) == len(DOCS)  # the ranking is not decided by ties
    assert r.backend.usage.calls == len(DOCS)
    assert r.strategy.score_scale == ("probability" if activation == "sigmoid" else "logit")


def test_batched_queries_and_chunking(tiny_cross_encoder_dir):
    """Several queries in one call score as they do alone; chunking=max scores every window of a long
    document and takes the best, each window equal to CrossEncoder.predict on that window."""
    from rerankkit import Doc, Query, Reranker

    r = Reranker("cross-encoder", model=str(tiny_cross_encoder_dir), batch_size=3, max_length=128, dtype="fp32")
    items = [(Query("a", QUERY), [Doc(str(i), t) for i, t in enumerate(DOCS)]),
             (Query("b", "lemon cake"), [Doc(str(i), t) for i, t in enumerate(DOCS[:3])])]
    together = r.rerank_many(items)
    alone = [r.rerank_many([it])[0] for it in items]
    for x, y in zip(together, alone):
        assert x.docids == y.docids
        assert np.allclose([d.score for d in x.docs], [d.score for d in y.docs], atol=1e-6)

    long_doc = " ".join(f"word{i} immune vaccine" for i in range(120))
    chunked = Reranker("cross-encoder", model=str(tiny_cross_encoder_dir), max_length=128, chunking="max",
                       chunk_tokens=40, chunk_overlap=8, dtype="fp32")
    ranking = chunked.rerank(QUERY, [long_doc, DOCS[1]])
    assert ranking.metadata["chunked_docs"] == 1 and ranking.metadata["chunks"] > 3
    assert ranking.metadata["truncated_docs"] == 0
    from rerankkit.strategies.chunking import _windows, spans_of

    spans = spans_of(chunked.backend, long_doc)
    windows = [long_doc[w[0][0]: w[-1][1]] for w in _windows(spans, 40, 32)]
    assert len(windows) == ranking.metadata["chunks"] - 1
    ref = _reference(tiny_cross_encoder_dir, [(QUERY, w) for w in windows], "sigmoid")
    got = {sd.docid: sd.score for sd in ranking.docs}
    assert abs(got["0"] - ref.max()) < 1e-5


def test_prompt_render_shows_the_pair_as_the_model_reads_it(tiny_cross_encoder_dir, capsys):
    from rerankkit.cli.main import main

    assert main(["prompt", "render", "cross-encoder", "--set", f"model={tiny_cross_encoder_dir}", "--query", QUERY,
                 "--doc", DOCS[0]]) == 0
    out = capsys.readouterr().out
    assert "(relevance of a query-document pair)" in out
    assert f"[CLS] {QUERY} [SEP] {DOCS[0].lower()} [SEP]" in out
