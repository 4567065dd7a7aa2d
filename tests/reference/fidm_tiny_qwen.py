"""Tiny random Qwen2/Qwen3 models with a byte-level BPE tokenizer trained in the session (no hub).

The tokenizer splits text with Qwen2's pre-tokenization pattern (as transformers' Qwen2Tokenizer does),
so punctuation merges with a following newline or quote the way the real Qwen tokenizers merge it; it
knows ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>`` and has a ChatML chat template that, like
Qwen3's, writes an empty think block when ``enable_thinking`` is false.
"""

from __future__ import annotations

from pathlib import Path

QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
               r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
CORPUS = [
    "What is the capital of China? The capital of China is Beijing.\n",
    "Explain gravity.\nGravity is a force that attracts two bodies towards each other.\n",
    'The word is: "gravity". Use one word to represent the passage in a retrieval task.\n',
    "query: what is bm25?\ndocument: BM25 is a bag-of-words ranking function used by search engines.\n",
    "You are a search relevance expert who evaluates how well documents match search queries.\nRelevance:",
    "Given a web search query and some relevant documents, rerank the documents that answer the query:\n",
    "Documents:\n[1] first passage.\n[2] second passage!\n[3] third one?\nSearch Query: which passage?\n",
    "Cats sleep most of the day. Dogs bark at night; birds sing in the morning, don't they?\n",
    "The 2019 TREC deep learning track used 43 judged queries (NIST assessors), graded 0-3.\n",
    "Photosynthesis converts light energy into chemical energy in plants, algae and bacteria.\n",
]


def train_tokenizer(out: Path) -> Path:
    """Train the byte-level BPE on :data:`CORPUS` and save it as a transformers tokenizer in ``out``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    fast.chat_template = CHATML
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    # a config that transformers 4 (the reference packages' pin) reads as well as 5
    import json

    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "additional_special_tokens": SPECIAL[1:], "chat_template": CHATML, "model_max_length": 4096}
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
    (out / "chat_template.jinja").unlink(missing_ok=True)
    return out


def build(out: Path, arch: str = "qwen2", seed: int = 0) -> Path:
    """A 2-layer, 32-d random ``arch`` (qwen2 | qwen3) causal LM with the trained tokenizer, saved in ``out``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    train_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(out)
    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM)}[arch]
    torch.manual_seed(seed)
    cfg = config_cls(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=4096,
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    cfg.architectures = [model_cls.__name__]
    model_cls(cfg).save_pretrained(out)
    return out
