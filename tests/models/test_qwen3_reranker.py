"""Qwen3-Reranker: the prompt rerankkit renders equals the model card's format byte for byte (with a
Qwen3-style chat template built in the session), and a tiny random Qwen3 scores as the card computes."""

from __future__ import annotations

import math

import numpy as np
import pytest

# the model card's "Transformers Usage", spelled out: prefix + format_instruction(...) + suffix
CARD_PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
               "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def card_format(query: str, doc: str, instruction: str | None = None) -> str:
    body = f"<Instruct>: {instruction or CARD_INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}"
    return CARD_PREFIX + body + CARD_SUFFIX


# Qwen3's chat-template behaviour for these turns (system first, user, generation prompt, thinking switch)
QWEN3_STYLE_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

QUERY = "what causes tides?"
DOCS = ["Tides are caused by the Moon's gravity pulling on the oceans.",
        "A sonnet has fourteen lines.",
        "The Sun also raises tides, about half as strongly as the Moon.",
        "Ünïcödé text — with “quotes” and\nnewlines\n\ninside."]


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory, smollm2_dir):
    """A tiny random Qwen3ForCausalLM with a byte-level BPE tokenizer (ChatML special tokens) and a
    Qwen3-style chat template."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    tok.chat_template = QWEN3_STYLE_TEMPLATE
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    cfg.architectures = ["Qwen3ForCausalLM"]
    out = tmp_path_factory.mktemp("tiny-qwen3")
    Qwen3ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_rendered_prompt_is_the_model_card_format(tiny_qwen3_dir):
    from rerankkit import Reranker
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator
    from rerankkit.types import Doc, Query

    for instruction in (None, "Given a question, find the passage that answers it"):
        r = Reranker("qwen3-reranker-0.6b", model=str(tiny_qwen3_dir), dtype="fp32",
                     **({"instruction": instruction} if instruction else {}))
        ctx = QueryContext(r.backend, Truncator(r.backend, r.strategy.max_doc_tokens))
        for i, doc in enumerate(DOCS):
            req = r.strategy.requests(Query("q", QUERY), [Doc(str(i), doc)], ctx)[0]
            assert r.backend.render(req.prompt).encode() == card_format(QUERY, doc, instruction).encode()
            assert req.choices == ("yes", "no")


def test_prompt_render_command_prints_the_card_format(tiny_qwen3_dir, capsys):
    from rerankkit.cli.main import main

    assert main(["prompt", "render", "qwen3-reranker-0.6b", "--set", f"model={tiny_qwen3_dir}", "--set",
                 "instruction=Find the passage", "--query", QUERY, "--doc", DOCS[0]]) == 0
    out = capsys.readouterr().out
    assert card_format(QUERY, DOCS[0], "Find the passage") in out


def test_tiny_qwen3_end_to_end_equals_the_card_computation(tiny_qwen3_dir):
    """p(yes) from the card's recipe (prefix/suffix token ids around the tokenised body, softmax over the
    last-position logits of "no" and "yes") equals the sigmoid of rerankkit's score; same ranking."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit import Reranker

    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir, dtype=torch.float32).eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    prefix = tok.encode(CARD_PREFIX, add_special_tokens=False)
    suffix = tok.encode(CARD_SUFFIX, add_special_tokens=False)
    card = []
    for doc in DOCS:
        body = f"<Instruct>: {CARD_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {doc}"
        ids = prefix + tok(body, add_special_tokens=False)["input_ids"] + suffix
        with torch.no_grad():
            last = model(torch.tensor([ids])).logits[0, -1]
        card.append(float(torch.log_softmax(torch.stack([last[no], last[yes]]), dim=0)[1].exp()))

    r = Reranker("qwen3-reranker-0.6b", model=str(tiny_qwen3_dir), dtype="fp32", batch_size=3)
    ranking = r.rerank(QUERY, DOCS)
    got = {int(sd.docid): 1.0 / (1.0 + math.exp(-sd.score)) for sd in ranking.docs}
    assert np.max(np.abs(np.array([got[i] for i in range(len(DOCS))]) - np.array(card))) < 1e-5
    assert [int(d) for d in ranking.docids] == sorted(range(len(DOCS)), key=lambda i: (-card[i], i))
    # the ids the backend sends are the card's ids
    rendered = r.backend.render(r.strategy.requests(ranking.query, [ranking.docs[0].doc],
                                                    _ctx(r))[0].prompt)
    assert r.backend.encode(rendered)[: len(prefix)] == prefix
    assert r.backend.continuation_ids(rendered, "yes") == [yes]


def _ctx(r):
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.truncation import Truncator

    return QueryContext(r.backend, Truncator(r.backend, None))
