"""E²Rank through the real hf backend on a tiny random causal model (fp32)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")

from rerankkit import Doc, Query, Reranker  # noqa: E402
from rerankkit.backends.base import Prompt  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402

DOCS = [Doc(f"d{i}", f"passage {i}: " + "some words about a topic " * (i + 1)) for i in range(6)]


@pytest.fixture(scope="module")
def causal(tiny_causal_dir):
    return HFBackend(str(tiny_causal_dir), dtype="fp32", batch_size=4)


def test_e2rank_scores_are_cosines_of_the_rendered_prompt_and_suffixed_documents(causal):
    r = Reranker("e2rank-0.6b", backend_instance=causal, prompt_docs=3)
    ranking = r.rerank_many([(Query("q", "a topic"), DOCS)])[0]
    cut = {d.docid: " ".join(d.text.split()[:1024]) for d in DOCS}  # E²Rank's word cut (whitespace joined)
    items = "\n".join(f"[{k}] {cut[d.docid]}" for k, d in enumerate(DOCS[:3], start=1))
    prompt = Prompt.user("Given a web search query and some relevant documents, rerank the documents that answer "
                         f"the query:\nDocuments:\n{items}\nSearch Query: a topic")
    q = causal.embed([causal.render(prompt)])[0]
    for sd in ranking.docs:
        v = causal.embed([cut[sd.docid] + "<|endoftext|>"])[0]
        assert sd.score == pytest.approx(float(q @ v), abs=1e-4)
    assert [d.score for d in ranking.docs] == sorted((d.score for d in ranking.docs), reverse=True)


def test_queries_batched_together_equal_one_at_a_time(causal):
    r = Reranker("e2rank-minilm", backend_instance=causal)
    items = [(Query("a", "first"), DOCS[:4]), (Query("b", "second query"), DOCS[2:])]
    together = r.rerank_many(items)
    alone = [r.rerank_many([it])[0] for it in items]
    for x, y in zip(together, alone):
        assert x.docids == y.docids
        assert np.allclose([d.score for d in x.docs], [d.score for d in y.docs], atol=1e-5)


def test_chat_template_kwargs_reach_the_template(tiny_causal_dir):
    be = HFBackend(str(tiny_causal_dir), dtype="fp32", chat_template_kwargs='{"custom_flag": true}')
    be.tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                                  "{% endfor %}{% if custom_flag %}FLAG{% endif %}")
    assert be.render(Prompt.user("x")).endswith("FLAG")
    assert be.options()["chat_template_kwargs"] == {"custom_flag": True}


def test_a_rendered_prompt_gets_no_second_bos(tiny_causal_dir, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "bos"
    shutil.copytree(tiny_causal_dir, folder)
    AutoTokenizer.from_pretrained(folder, add_bos_token=True).save_pretrained(folder)
    be = HFBackend(str(folder), dtype="fp32")
    bos = be.tokenizer.bos_token
    assert be._embed_ids("hello", 64)[0] == be.tokenizer.bos_token_id
    ids = be._embed_ids(bos + "hello", 64)
    assert ids[0] == be.tokenizer.bos_token_id and ids[1] != be.tokenizer.bos_token_id
