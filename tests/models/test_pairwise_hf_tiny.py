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


def test_seq2seq_assistant_prefix_starts_the_decoder(seq2seq):
    """Scoring after a prefix reads the decoder position after it (not the encoder's end); batched = alone."""
    import numpy as np
    import torch

    from rerankkit.backends.base import Prompt, ScoreRequest

    tok, model = seq2seq.tokenizer, seq2seq.model
    prompts = [Prompt.user("Which passage? Passage A: rivers. Passage B: cats.", prefix="Passage"),
               Prompt.user("A shorter question?", prefix="Passage"), Prompt.user("No prefix here.")]
    got = seq2seq.score([ScoreRequest(p, (" A", " B")) for p in prompts])
    for p, row in zip(prompts, got):
        enc = tok(p.messages[0].content, return_tensors="pt").input_ids  # the encoder reads the message only
        dec = torch.tensor([seq2seq.decoder_ids(p.prefix)])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=enc, decoder_input_ids=dec).logits[0, -1].float(), -1)
        ids = [seq2seq.continuation_ids(p.prefix, c) for c in (" A", " B")]
        assert all(len(i) == 1 for i in ids)
        np.testing.assert_allclose(row, [float(logp[i[0]]) for i in ids], atol=1e-4)
    assert seq2seq.decoder_ids("Passage")[0] == model.config.decoder_start_token_id
    assert "--- decoder ---" in seq2seq.render(prompts[0]) and seq2seq.render(prompts[2]) == "No prefix here."
    # generation continues the decoder prefix; the text returned is what follows it
    gen = seq2seq.generate(prompts[:2], 3)
    for p, g in zip(prompts, gen):
        dec = torch.tensor([seq2seq.decoder_ids(p.prefix)])
        enc = tok(p.messages[0].content, return_tensors="pt").input_ids
        out = model.generate(input_ids=enc, decoder_input_ids=dec, max_new_tokens=3, do_sample=False)[0]
        full = tok.decode(out[dec.shape[1]:].tolist(), skip_special_tokens=True)
        assert g.text.strip() == full.strip()


def test_prompt_render_shows_a_seq2seq_models_encoder_and_decoder(tiny_seq2seq_dir, capsys):
    from rerankkit.cli.main import main

    assert main(["prompt", "render", "prp-flan-t5-xl", "--set", f"model={tiny_seq2seq_dir}", "--set", "dtype=fp32",
                 "-q", "what is a flea", "-d", "Fleas are insects.", "-d", "Cats sleep."]) == 0
    out = capsys.readouterr().out
    first = out.split("=== request 2/")[0]
    encoder = first.split("--- encoder input\n")[1].split("--- decoder input\n")[0]
    decoder = first.split("--- decoder input\n")[1]
    assert encoder.rstrip().endswith("Output Passage A or Passage B:")  # no answer prefix in the encoder
    assert decoder.strip().endswith("Passage")  # the decoder starts with it
