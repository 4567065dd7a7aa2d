"""PromptReps side by side with its official encoding code, on a tiny random Qwen2 built in the session.

Reference: ielab/PromptReps at commit e0636287aedd65abbf45dc9ead889054ad16965b (not on a package registry;
it runs through tevatron and NLTK data, neither usable offline here), read and followed step by step:
``dataset.py`` ``PromptRepsEncodeDataset`` (passage = ``f"{title} {text}".strip()``, query ``.strip()``) and
``PromptRepsEncodeCollator`` (text ids cut to ``passage_max_len``/``query_max_len`` = 512 as the README runs
it, then ``prefix_ids + text_ids + suffix_ids``, each tokenised on its own without special tokens);
``modeling.py`` ``encode_query`` with ``num_pooled_tokens=0`` (the last position's logits through
``log(1 + relu)``, the last layer's hidden state there, L2-normalised with ``--normalize``); ``encode.py``
``get_valid_tokens_values`` (the token ids of the text's words -- NLTK ``word_tokenize`` of the lowercased,
*uncut* text minus NLTK's English stopwords and punctuation, each word tokenised alone -- their top
min(n, 128) weights, quantised as ``rint(100 * w)``). The prompt wording is that of the model files
``prompts/meta-llama/Meta-Llama-3-8B-Instruct/*.txt``, checked here by sha256; the oracle writes the same
words in this tiny model's ChatML format. (Those files write the Llama-3 chat format by hand with literal
backslash-n pairs where the format has newlines, so the reference's model reads ``\\n\\n`` characters;
rerankkit renders the tokenizer's chat template instead -- a deviation listed in eval/fidelity_methods.md.) The texts avoid what NLTK and rerankkit split differently
(contractions, hyphens), and their expected words are written out as NLTK gives them.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))

import fidm_tiny_qwen  # noqa: E402

from rerankkit.backends import create_backend  # noqa: E402
from rerankkit.prompts.template import load_template  # noqa: E402
from rerankkit.reps import PromptRepsEncoder  # noqa: E402

# sha256 of the stripped prompt files at the commit above (Meta-Llama-3-8B-Instruct)
FILES_SHA = {
    "passage_prefix": "9b5297656099c89f2eb73a344b475480f7615966bff7bc3c3ee0ac165f4331a9",
    "passage_suffix": "c703699df6da979db7b23e918848145885a30d7b83566ac71bc85031d64979ab",
    "query_prefix": "76b1f7f503b845ad6ce2039e3c2b5085bc261e0a7ef7007898b854f967bc2379",
    "query_suffix": "13ef4ad2a9cc1a4048df52fa4f3e5cbedd035a737703ac8bc4d6e48b57b0b8f5",
}
# the files spell the chat format by hand with literal backslash-n pairs, not newlines (the model sees "\\n")
LLAMA3 = {"bos": "<|begin_of_text|>", "sys": "<|start_header_id|>system<|end_header_id|>\\n\\n",
          "user": "<|start_header_id|>user<|end_header_id|>\\n\\n", "end": "<|eot_id|>",
          "assistant": "<|start_header_id|>assistant<|end_header_id|>\\n\\n"}
CHATML = {"bos": "", "sys": "<|im_start|>system\n", "user": "<|im_start|>user\n", "end": "<|im_end|>\n",
          "assistant": "<|im_start|>assistant\n"}
# (text, its words as NLTK's word_tokenize of the lowercased text gives them, stopwords and punctuation out)
TEXTS = [
    ("  The capital of China is Beijing.  ", ["capital", "china", "beijing"]),
    ("Gravity is a force that attracts two bodies towards each other.", ["gravity", "force", "attracts", "two",
                                                                        "bodies", "towards"]),
    ("Cats sleep most of the day; dogs bark at night, birds sing in the morning!",
     ["cats", "sleep", "day", "dogs", "bark", "night", "birds", "sing", "morning"]),
    ("Photosynthesis converts light energy into chemical energy in plants " * 12 + "and algae.",
     ["photosynthesis", "converts", "light", "energy", "chemical", "plants", "algae"]),
]


def _reference_parts(kind: str, fmt: dict[str, str]) -> tuple[str, str]:
    """The reference's prefix and suffix for ``kind`` in chat format ``fmt``, from rerankkit's template words."""
    tpl = load_template("promptreps")
    before, after = tpl.parts[kind].split("\x1f{text}\x1f")
    prefix = fmt["bos"] + fmt["sys"] + tpl.parts["system"] + fmt["end"] + fmt["user"] + before
    suffix = after + fmt["end"] + fmt["assistant"] + tpl.parts["prefix"]
    return prefix, suffix


def test_prompt_words_are_the_reference_files():
    for kind in ("passage", "query"):
        prefix, suffix = _reference_parts(kind, LLAMA3)
        assert hashlib.sha256(prefix.encode()).hexdigest() == FILES_SHA[f"{kind}_prefix"]
        assert hashlib.sha256(suffix.encode()).hexdigest() == FILES_SHA[f"{kind}_suffix"]


@pytest.fixture(scope="module")
def fidm_promptreps_dir(tmp_path_factory):
    return fidm_tiny_qwen.build(tmp_path_factory.mktemp("fidm-promptreps-qwen2"), "qwen2")


def _oracle(model_dir, text: str, words: list[str], kind: str, max_len: int):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    prefix, suffix = _reference_parts(kind, CHATML)
    text = text.strip()
    body = tok(text, add_special_tokens=False, truncation=True, max_length=max_len)["input_ids"]
    ids = tok.encode(prefix, add_special_tokens=False) + body + tok.encode(suffix, add_special_tokens=False)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    logits = torch.log(1 + torch.relu(out.logits[0, -1]))
    dense = torch.nn.functional.normalize(out.hidden_states[-1][0, -1], p=2, dim=-1)
    cand = sorted({i for w in words for i in tok.encode(w, add_special_tokens=False)})
    k = min(len(cand), 128)
    vals, idx = logits[torch.tensor(cand)].topk(k)
    sparse = {cand[int(i)]: int(np.rint(float(v) * 100)) for v, i in zip(vals, idx)}
    return dense.numpy(), {t: v for t, v in sparse.items() if v > 0}


@pytest.mark.parametrize("kind, max_len", [("passage", 512), ("query", 16)])
def test_dense_and_sparse_vectors_equal_the_reference_procedure(fidm_promptreps_dir, kind, max_len):
    backend = create_backend("hf", str(fidm_promptreps_dir), dtype="fp32", batch_size=2)
    enc = PromptRepsEncoder(backend, "promptreps", max_text_tokens=max_len)
    reps = enc.encode([t for t, _ in TEXTS], kind)
    for row, (text, words) in enumerate(TEXTS):
        dense, sparse = _oracle(fidm_promptreps_dir, text, words, kind, max_len)
        np.testing.assert_allclose(reps.dense[row], dense, atol=1e-5)
        got = reps.sparse.getrow(row)
        assert dict(zip(got.indices.tolist(), got.data.astype(int).tolist())) == sparse, (kind, row)
    if max_len == 16:  # the last text was cut before "algae", yet the oracle (whole-text words) matched
        assert "algae" not in backend.truncate(TEXTS[3][0].strip(), 16)
