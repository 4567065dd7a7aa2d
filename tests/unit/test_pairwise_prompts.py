"""PRP / setwise templates (exact published text), answer parsing, presets."""

from __future__ import annotations

import pytest

from rerankkit.backends.fake import OracleBackend
from rerankkit.presets import RERANKER_PRESETS
from rerankkit.prompts.template import load_template
from rerankkit.reranker import Reranker
from rerankkit.strategies.labels import best_label, parse_label, split_answers

PRP_PUBLISHED = (
    'Given a query "how tall is k2", which of the following two passages is more relevant to the query?\n\n'
    'Passage A: "first text"\n\nPassage B: "second text"\n\nOutput Passage A or Passage B:'
)
SETWISE_PUBLISHED = (
    'Given a query "q", which of the following passages is the most relevant one to the query?\n\n'
    'Passage A: "x"\n\nPassage B: "y"\n\nPassage C: "z"\n\n'
    "Output only the passage label of the most relevant passage:"
)


def test_prp_template_is_the_published_prompt():
    t = load_template("prp")
    p = t.prompt(query="how tall is k2", passage_a="first text", passage_b="second text")
    assert [m.role for m in p.messages] == ["user"] and p.prefix == ""
    assert p.messages[0].content == PRP_PUBLISHED
    assert "Qin et al." in t.source


def test_setwise_template_is_the_published_prompt():
    t = load_template("setwise")
    sep = t.extra["item_separator"]
    items = sep.join(t.fill("item", label=lbl, passage=x) for lbl, x in zip("ABC", "xyz"))
    assert t.prompt(query="q", passages=items).messages[0].content == SETWISE_PUBLISHED
    assert "Zhuang et al." in t.source


@pytest.mark.parametrize("text,label", [
    ("Passage A", "A"), ("Passage B", "B"), (" passage b.", "B"), ("Passage: A", "A"), ('Passage "B"', "B"),
    ("**Passage A**", "A"), ("(B)", "B"), ("B", "B"), ("A.", "A"), ("B is more relevant", "B"),
    ("Passage B is more relevant than Passage A", "B"), ("Document A", "A"),
    ('"', None), ("", None), ("Passage A or Passage B", None), ("passage a or passage b:", None),
    ("Passage C", None), ("I cannot tell", None), ("Answer: yes", None), ("a passage", None),
])
def test_parse_label(text, label):
    assert parse_label(text, ("A", "B")) == label


def test_parse_label_with_more_labels():
    assert parse_label("Passage C", ("A", "B", "C", "D")) == "C"
    assert parse_label("D", ("A", "B", "C", "D")) == "D"
    assert parse_label("E", ("A", "B", "C", "D")) is None


def test_split_answers_moves_shared_words_into_the_prefix():
    assert split_answers(["Passage A", "Passage B"]) == ("Passage", (" A", " B"))
    assert split_answers(["A", "B"]) == ("", ("A", "B"))
    assert split_answers(["Doc1", "Doc2"]) == ("", ("Doc1", "Doc2"))  # never inside a word
    assert split_answers(["The answer is A", "The answer is B"]) == ("The answer is", (" A", " B"))


def test_best_label():
    assert best_label([-1.0, -0.5]) == 1
    assert best_label([-0.5, -0.5]) is None
    assert best_label([-3.0, -0.5, -0.5]) is None
    assert best_label([-0.1, -2.0, -3.0]) == 0


NEW_PRESETS = ["prp-flan-ul2", "prp-flan-t5-xl", "prp-flan-t5-xxl", "prp-allpair-flan-t5-xl",
               "setwise-flan-t5-large", "prp-smollm2-135m", "setwise-smollm2-135m"]


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_presets_build_without_loading_a_model(name):
    spec = RERANKER_PRESETS.get(name)
    r = Reranker(name)  # validates strategy, params, template and declared backend capabilities
    assert r.strategy.name == spec.strategy and spec.paper and spec.description
    assert r._backend is None


def test_prp_ul2_preset_is_sliding_10():
    spec = RERANKER_PRESETS.get("prp-flan-ul2")
    assert (spec.model, spec.params["method"], spec.params["k"]) == ("google/flan-ul2", "sliding", 10)


def test_preset_with_oracle_backend_and_overrides():
    docs = ["alpha text", "beta text", "gamma text"]
    oracle = OracleBackend({"alpha text": 0, "beta text": 2, "gamma text": 1})
    for name in ("prp-smollm2-135m", "setwise-smollm2-135m"):
        for method in (("sliding", "heapsort", "allpair") if name.startswith("prp") else ("heapsort", "bubblesort")):
            r = Reranker(name, backend_instance=oracle, method=method)
            assert r.rerank("q", docs).docids == ["1", "2", "0"]
