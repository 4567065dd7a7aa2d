"""Shared fixtures: offline settings, the real data root, tiny random models built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real benchmark data ($RERANKKIT_DATA); tests that need it skip when it is absent."""
    root = os.environ.get("RERANKKIT_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data not available: set RERANKKIT_DATA (scripts/test sets it to ../shared/data)")
    return Path(root)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct from the packaged GGUF, materialised once as a model folder."""
    from rerankkit.models import materialize_gguf, packaged_path

    try:
        p = packaged_path("smollm2-135m-instruct")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged SmolLM2 not installed: {exc}")
    return materialize_gguf(str(p.parent), p.name)


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A tiny random Llama (2 layers, 64-d) with SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    cfg.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A tiny random T5 (seq2seq) with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    tok.chat_template = None
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    cfg.architectures = ["T5ForConditionalGeneration"]
    model = T5ForConditionalGeneration(cfg)
    out = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


from llama_server import llama_server  # noqa: E402,F401  (session fixture: a real llama.cpp server)
