"""SEGMENT_BREAK: local tokenisers encode the parts of a prompt apart, as mxbai-rerank and PromptReps do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent))

import fidm_tiny_qwen  # noqa: E402

from rerankkit.backends.base import SEGMENT_BREAK, Prompt, without_breaks  # noqa: E402
from rerankkit.backends.tokenizing import LocalTokenizer  # noqa: E402


@pytest.fixture(scope="module")
def fidm_segment_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(fidm_tiny_qwen.train_tokenizer(tmp_path_factory.mktemp("fidm-seg")))


def test_segments_are_tokenised_apart_and_the_marks_never_reach_the_model(fidm_segment_tokenizer):
    tok = fidm_segment_tokenizer
    ids = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert ids("passage.\nDocs") != ids("passage.") + ids("\nDocs")  # the BPE merges "." with "\n"
    lt = LocalTokenizer(tok, chat_template=True)
    rendered = lt.render(Prompt.user(f"{SEGMENT_BREAK}passage.{SEGMENT_BREAK}\nDocs"))
    assert lt.encode(rendered) == ids("<|im_start|>user\n") + ids("passage.") + ids("\nDocs<|im_end|>\n<|im_start|>assistant\n")
    assert lt.encode(without_breaks(rendered)) == ids(without_breaks(rendered))
    assert tok.convert_tokens_to_ids(tok.tokenize(SEGMENT_BREAK))[0] not in lt.encode(rendered)


def test_without_a_chat_template_the_tokenizers_special_tokens_go_around_the_segments(fidm_segment_tokenizer):
    from tokenizers import processors

    tok = fidm_segment_tokenizer
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eos)])  # an EOS at the end, as T5's
    ids = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    lt = LocalTokenizer(tok, chat_template=False)
    assert lt.encode(f"query: a?{SEGMENT_BREAK}\ndocument: b.") == ids("query: a?") + ids("\ndocument: b.") + [eos]
