"""Fixtures of the rank_llm reference tests (imported by tests/reference/test_rank_llm_*.py)."""

from __future__ import annotations

import pytest
import rank_llm_ref


@pytest.fixture(scope="session")
def rank_llm_env():
    """rank_llm's listwise modules (the harness skips the tier where rank-llm is not installed)."""
    try:
        return rank_llm_ref.load()
    except ImportError as exc:
        pytest.skip(f"rank_llm reference not available: {exc}")


def _copy_with_context(src, out, context: int = 32768):
    """A copy of a model folder whose config declares ``context`` positions, so rank_llm's budget
    (``context_size``) binds, not the tiny model's 2,048 positions (RoPE: no weights change)."""
    import json
    import shutil

    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    cfg = json.loads((out / "config.json").read_text())
    cfg["max_position_embeddings"] = context
    (out / "config.json").write_text(json.dumps(cfg))
    return out


@pytest.fixture(scope="session")
def rank_llm_tiny_dir(tmp_path_factory, tiny_causal_dir):
    """The tiny random Llama (SmolLM2's tokenizer and chat template) with 32,768 positions."""
    return _copy_with_context(tiny_causal_dir, tmp_path_factory.mktemp("tiny-llama-8k"))


@pytest.fixture(scope="session")
def rank_llm_backend(rank_llm_env, rank_llm_tiny_dir):
    """An hf backend on :func:`rank_llm_tiny_dir`."""
    from rerankkit.backends.hf import HFBackend

    return HFBackend(str(rank_llm_tiny_dir), dtype="fp32", batch_size=8)


@pytest.fixture(scope="session")
def rank_llm_bos_dir(tmp_path_factory, tiny_causal_dir):
    """The tiny Llama with a tokenizer that adds a BOS token to every text, as Llama / Mistral
    tokenizers do (rank_llm counts it in its prompt budget); the chat template writes its own BOS."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    out = _copy_with_context(tiny_causal_dir, tmp_path_factory.mktemp("tiny-llama-bos"))
    tok = AutoTokenizer.from_pretrained(out)
    bos = "<|endoftext|>"
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
    tok.chat_template = "{{ '<|endoftext|>' }}" + tok.chat_template
    tok.save_pretrained(out)
    again = AutoTokenizer.from_pretrained(out)
    assert again("x")["input_ids"][0] == again.convert_tokens_to_ids(bos), "the BOS post-processor did not stick"
    return out


@pytest.fixture(scope="session")
def rank_llm_eos_dir(tmp_path_factory, rank_llm_tiny_dir):
    """The tiny Llama whose end-of-sequence output row is twice that of the newline it keeps writing, so
    greedy decoding wants to stop at once: what rank_llm's ``min_tokens`` (rerankkit's ``min_new_tokens``)
    prevents."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rank_llm_tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(rank_llm_tiny_dir, dtype=torch.float32)
    weight = model.get_output_embeddings().weight.detach().clone()
    weight[tok.eos_token_id] = 2.0 * weight[tok.convert_tokens_to_ids("Ċ")]  # "Ċ": the newline token
    model.config.tie_word_embeddings = False
    model.lm_head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    model.lm_head.weight = torch.nn.Parameter(weight)
    out = tmp_path_factory.mktemp("tiny-llama-eos")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
