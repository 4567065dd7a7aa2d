"""rerankkit's PRP and setwise against ielab/llm-rankers on the same model, DL19 candidates and settings.

3 DL19 queries x BM25 top-10, passages cut to 128 tokens and queries to 32 by each side's own code, fp32.
Models: SmolLM2-135M-Instruct (causal), a tiny random T5 with a SentencePiece tokenizer trained in the
session (seq2seq), a tiny random Llama (causal; its label tokens calibrated to be common answers, so that
the sorting runs on real decisions). llm-rankers runs in a subprocess (``llmrankers_side.py``, its
transformers-5 patches listed there). For each case and query:

- the model reads the same token ids on both sides, prompt by prompt (encoder ids for T5; T5's decoder
  prefix and label token ids are compared too);
- generation mode (and T5 setwise likelihood mode): the same ranking, and rerankkit's model calls equal
  the distinct prompts the reference sent (it re-asks repeated comparisons; the raw count is reported by
  eval/fidelity_pairwise.py);
- scoring mode, which PRP (and setwise on causal models) lacks in llm-rankers: on every prompt where the
  reference's greedy answer is a label, rerankkit's scoring picks the same label; where all of a query's
  answers were labels, the whole run is the same.
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow]

import llmrankers_parity as P  # noqa: E402  (tests/reference is on sys.path: conftest.py)

QUERIES, DEPTH = 3, 10


@pytest.fixture(scope="module")
def items(data_root):
    return P.dl19_items(QUERIES, DEPTH)


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory, data_root):
    return P.build_tiny_t5(tmp_path_factory.mktemp("ref-t5"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, smollm2_dir, data_root):
    return P.build_tiny_llama(tmp_path_factory.mktemp("ref-llama"), smollm2_dir)


T5_CASES = P.cases(num_child=(2, 3), likelihood=True)
LLAMA_CASES = P.cases(num_child=(2, 3))
# SmolLM2 costs ~0.5 s a prompt here: CI compares the two heapsorts (~180 prompts a side); every method, and
# 10 queries x 20 documents, run in eval/fidelity_pairwise.py
SMOL_CASES = [c for c in P.cases(num_child=(2,), allpair=False) if c.method == "heapsort"]


class Side:
    """One model: the reference's run of every case (once), and rerankkit's backend on the same folder."""

    def __init__(self, model_dir, case_list, items, seq2seq):
        from rerankkit.backends import create_backend

        self.seq2seq = seq2seq
        self.ref = P.run_reference(model_dir, case_list, items)
        self.backend = create_backend("hf", str(model_dir), dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def t5(llmrankers, t5_dir, items):
    return Side(t5_dir, T5_CASES, items, seq2seq=True)


@pytest.fixture(scope="module")
def llama(llmrankers, llama_dir, items):
    return Side(llama_dir, LLAMA_CASES, items, seq2seq=False)


@pytest.fixture(scope="module")
def smol(llmrankers, smollm2_dir, items):
    return Side(smollm2_dir, SMOL_CASES, items, seq2seq=False)


def check(side: Side, case: P.Case, items, modes) -> None:
    # whole runs in every mode; prompt by prompt, decisions are asked again in scoring mode only (the
    # generation runs are compared whole)
    report = P.compare_case(case, side.ref["cases"][case.name], items, side.backend, side.seq2seq, modes,
                            ask_prompts=("score",))
    for mode, result in report["modes"].items():
        for q in result["queries"]:
            where = f"{case.name} {mode} query {q['qid']}"
            assert q["unique_texts"], f"{where}: duplicate passages make prompts ambiguous"
            assert q["prompts_same_input_ids"] == q["ref_distinct_prompts"], f"{where}: different model input"
            if mode == "score":
                assert q["labelled_same_decision"] == q["prompts_labelled_by_ref"], f"{where}: {q}"
            if result["full_run_compared"] or q["prompts_labelled_by_ref"] == q["ref_distinct_prompts"]:
                assert q["same_ranking"], f"{where}: {q['ranking']} != {q['ref_ranking']}"
                assert q["model_calls"] == q["ref_distinct_prompts"], f"{where}: {q}"


def modes_for(case: P.Case, score_too: bool = True) -> tuple[str, ...]:
    if case.scoring == "likelihood":
        return ("score",)
    return ("generate", "score") if score_too else ("generate",)


@pytest.mark.parametrize("case", T5_CASES, ids=lambda c: c.name)
def test_tiny_t5(t5, items, case):
    check(t5, case, items, modes_for(case, score_too=case.ranker == "pairwise"))


def test_tiny_t5_decoder_prefix_and_label_tokens(t5):
    assert t5.backend.decoder_ids("Passage") == t5.ref["t5_decoder_input_ids"]
    labels = [t5.backend.continuation_ids("Passage", f" {chr(65 + i)}") for i in range(23)]
    assert [ids[-1] for ids in labels] == t5.ref["t5_target_token_ids"]
    assert all(len(ids) == 1 for ids in labels)


@pytest.mark.parametrize("case", LLAMA_CASES, ids=lambda c: c.name)
def test_tiny_llama(llama, items, case):
    check(llama, case, items, modes_for(case))


@pytest.mark.golden
@pytest.mark.parametrize("case", SMOL_CASES, ids=lambda c: c.name)
def test_smollm2(smol, items, case):
    # SmolLM2 answers '"' after " Passage:" (never a label): scoring mode has nothing to be checked against
    check(smol, case, items, ("generate",))
