"""PRP / setwise templates (exact published text), answer parsing, presets."""

from __future__ import annotations

import re

import pytest

from rerankkit.backends.fake import OracleBackend, ScriptedBackend
from rerankkit.errors import ConfigError
from rerankkit.presets import RERANKER_PRESETS
from rerankkit.prompts.template import load_template
from rerankkit.reranker import Reranker
from rerankkit.strategies import STRATEGIES
from rerankkit.strategies.labels import best_label, read_answer, read_think_answer, split_answers
from rerankkit.types import Doc, Query

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
    assert [m.role for m in p.messages] == ["user"] and p.prefix == " Passage:"  # the reference's causal prefix
    assert p.messages[0].content == PRP_PUBLISHED
    assert "Qin et al." in t.source
    flan = load_template("prp-flan")  # seq2seq: the same encoder text, the decoder starts with "Passage"
    q = flan.prompt(query="how tall is k2", passage_a="first text", passage_b="second text")
    assert q.messages == p.messages and q.prefix == "Passage"
    assert (flan.extra["read"], flan.extra["answer_tokens"]) == ("answer", 2)


def test_setwise_template_is_the_published_prompt():
    for name, prefix in (("setwise", " Passage:"), ("setwise-flan", "Passage")):
        t = load_template(name)
        sep = t.extra["item_separator"]
        items = sep.join(t.fill("item", label=lbl, passage=x) for lbl, x in zip("ABC", "xyz"))
        p = t.prompt(query="q", passages=items)
        assert p.messages[0].content == SETWISE_PUBLISHED and p.prefix == prefix
        assert "Zhuang et al." in t.source


LABELS3 = ("A", "B", "C")


@pytest.mark.parametrize("text,index", [
    (" A", 0), ("B", 1), (" c\n", 2), (" b ", 1),  # one token after " Passage:", stripped and upper-cased
    ('"', None), ("", None), (" D", None), (" AB", None), (" A.", None), (" Passage A", None), (" (B)", None),
])
def test_read_rule_label_is_the_causal_reference(text, index):
    assert read_answer("label", text, LABELS3) == index


@pytest.mark.parametrize("text,index", [
    (" A", 0), (" B", 1), (" a", None), ("A", None), (" A ", None), (" A.", None), (" A B", None), ("", None),
])
def test_read_rule_answer_is_the_t5_prp_reference(text, index):
    # the decoded "Passage" + continuation must read exactly "Passage A" or "Passage B"
    assert read_answer("answer", text, ("A", "B"), (" A", " B"), "Passage") == index


@pytest.mark.parametrize("text,index", [
    (" A", 0), (" C", 2), (" A B", 1), (" AB", 1), (" a", None), (" A.", None), ("", None), (" D", None),
])
def test_read_rule_last_char_is_the_t5_setwise_reference(text, index):
    assert read_answer("last_char", text, LABELS3, (" A", " B", " C"), "Passage") == index


@pytest.mark.parametrize("text,index", [
    ("Passage B is more relevant than Passage A", 1), ("Passage A", 0), ("C", 2), (" B ", 1),
    ("passage b", None), ("I cannot tell", None), ("Passage D", None),
])
def test_read_rule_free_is_the_openai_reference(text, index):
    assert read_answer("free", text, LABELS3) == index


def test_unknown_read_rule_is_a_config_error():
    with pytest.raises(ConfigError):
        read_answer("fuzzy", " A", LABELS3)


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


def test_flan_presets_use_the_seq2seq_templates():
    for name in ("prp-flan-ul2", "prp-flan-t5-xl", "prp-flan-t5-xxl", "prp-allpair-flan-t5-xl", "setwise-flan-t5-large"):
        assert RERANKER_PRESETS.get(name).template.endswith("-flan")
    for name in ("prp-smollm2-135m", "setwise-smollm2-135m"):
        assert not RERANKER_PRESETS.get(name).template.endswith("-flan")


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


R1_ANSWERS = tuple(f"[{i + 1}]" for i in range(20))


@pytest.mark.parametrize("text,index,repaired", [
    ("<think> the third one </think> <answer>[3]</answer>", 2, False),
    ("<THINK>x</THINK>\n<ANSWER> [20] </ANSWER>", 19, False),
    ("<think> x </think> <answer>[21]</answer>", None, False),  # no such document
    ("<answer>[3]</answer>", 2, True),  # no reasoning tags: repaired
    ("<think> x </think> <answer>3</answer>", 2, True),  # no brackets: repaired
    ("<think> long reasoning </think> <answer>[4]", 3, True),  # cut off by the token budget: repaired
    ("<think> unfinished reasoning", None, False), ("[3]", None, False), ("", None, False),
])
def test_rank_r1_reading_strict_then_repaired(text, index, repaired):
    assert read_think_answer(text, R1_ANSWERS, repair=True) == (index, repaired)
    assert read_think_answer(text, R1_ANSWERS, repair=False) == ((index, False) if not repaired else (None, False))


def test_rank_r1_template_and_presets():
    t = load_template("rank-r1")
    strat = STRATEGIES.get("setwise")(t, {"num_child": 19, "mode": "generate"})
    p = strat.group_prompt("q", [f"d{i}" for i in range(20)], tuple(range(20)))
    assert [m.role for m in p.messages] == ["system", "user"] and p.prefix == ""
    assert p.messages[0].content.startswith("A conversation between User and Assistant.")
    assert p.messages[1].content.startswith('Given the query: "q", which of the following documents is most relevant?\n[1] d0\n[2] d1\n')
    assert p.messages[1].content.split("\n")[20] == "[20] d19"
    for size in (3, 7, 14):
        spec = RERANKER_PRESETS.get(f"rank-r1-{size}b")
        assert spec.model == f"Qwen/Qwen2.5-{size}B-Instruct"
        assert spec.backend_options["adapter"] == f"ielabgroup/Rank-R1-{size}B-v0.1"
        assert spec.params["num_child"] == 19 and spec.params["shuffle"] and spec.params["repair"]
        assert Reranker(f"rank-r1-{size}b")._backend is None  # validated without loading a model
    with pytest.raises(ConfigError):  # 20 passages need numeric labels: letters stop at W
        STRATEGIES.get("setwise")(load_template("setwise"), {"num_child": 23})


def test_rank_r1_over_a_scripted_model_counts_repairs_and_shuffles():
    docs = [Doc(str(i), f"document number {i}") for i in range(25)]
    seen = []

    def reply(prompt):
        seen.append(prompt)
        shown = [int(x) for x in re.findall(r"^\[\d+\] document number (\d+)$", prompt, re.M)]
        best = shown.index(max(shown)) + 1  # the highest document number is the most relevant
        return f"<answer>[{best}]</answer>" if best % 2 else f"<think> . </think> <answer>[{best}]</answer>"
    r = Reranker("rank-r1-7b", backend_instance=ScriptedBackend(generate=reply)).rerank("q", docs)
    assert r.docids[:10] == [str(i) for i in range(24, 14, -1)]
    assert r.metadata["repaired"] > 0 and r.metadata["unparsed"] == 0
    shown = [[int(x) for x in re.findall(r"^\[\d+\] document number (\d+)$", p, re.M)] for p in seen]
    assert max(len(s) for s in shown) == 20  # a heap node and its 19 children
    assert all(s != sorted(s) for s in shown if len(s) > 3)  # shown in a random order...
    first = list(seen)
    seen.clear()
    Reranker("rank-r1-7b", backend_instance=ScriptedBackend(generate=reply)).rerank("q", docs)
    assert seen == first  # ... that is the same every time


def test_titled_documents_are_shown_as_the_reference_joins_them():
    seen = []

    def score(text, choices):
        seen.append(text)
        return [-1.0, -2.0]
    docs = [Doc("a", "first text", title="Alpha"), Doc("b", "second text")]
    for template in ("prp", "prp-flan"):
        seen.clear()
        STRATEGIES.get("pairwise")(load_template(template), {"method": "allpair"}).rerank_many(
            ScriptedBackend(score=score), [(Query("q", "q"), docs)])
        assert all('"Alpha first text"' in t and '"second text"' in t for t in seen)  # "{title} {text}"
    assert load_template("setwise").document_text(docs[0]) == "Alpha first text"
    assert load_template("yes-no").document_text(docs[0]) == docs[0].prompt_text()  # no layout: the default
