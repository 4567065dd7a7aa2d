"""GroupRank groupwise reranking over the oracle and scripted backends."""

from __future__ import annotations

import json
import re

import pytest

from rerankkit import ConfigError, Doc, Query, Reranker
from rerankkit.backends.fake import OracleBackend, ScriptedBackend
from rerankkit.prompts.template import load_template
from rerankkit.strategies.groupwise import Groupwise


def corpus(n: int, seed: int = 3) -> tuple[list[Doc], dict[str, int]]:
    import random

    rng = random.Random(seed)
    docs = [Doc(f"d{i}", f"passage {i} about topic {rng.randint(0, 999)} and more words {i * 7}") for i in range(n)]
    return docs, {d.text: rng.choice([0, 0, 0, 1, 2, 3]) for d in docs}


class CountingOracle(OracleBackend):
    def __init__(self, rel):
        super().__init__(rel)
        self.batches: list[int] = []

    def generate(self, prompts, max_new_tokens):
        self.batches.append(len(prompts))
        return super().generate(prompts, max_new_tokens)


@pytest.mark.parametrize("preset", ["grouprank-smollm2-135m", "diver-grouprank-7b"])
def test_oracle_gives_the_ideal_order_and_all_groups_of_all_queries_go_in_one_call(preset):
    docs, rel = corpus(45)
    oracle = CountingOracle(rel)
    r = Reranker(preset, backend_instance=oracle)
    items = [(Query("q1", "first query"), docs), (Query("q2", "second query"), docs[::-1][:30])]
    rankings = r.rerank_many(items)
    assert oracle.batches == [3 + 2]  # ceil(45/20) + ceil(30/20) groups, one backend call
    for (_, ds), ranking in zip(items, rankings):
        grades = [rel[d.doc.text] for d in ranking.docs]
        assert grades == sorted(grades, reverse=True)
        # ties keep the input (retrieval) order
        for g in set(grades):
            tied = [d.docid for d in ranking.docs if rel[d.doc.text] == g]
            assert tied == [d.docid for d in ds if rel[d.text] == g]
        assert ranking.metadata["grouprank_unparsed_groups"] == 0
        assert ranking.metadata["grouprank_missing_scores"] == 0


def test_prompt_lists_every_group_member_with_labels_and_the_published_format():
    docs, rel = corpus(7)
    seen = []
    backend = ScriptedBackend(generate=lambda text: seen.append(text) or "{}")
    strat = Groupwise(load_template("grouprank"), {"group_size": 3})
    strat.rerank_many(backend, [(Query("q", "what is bm25"), docs)])
    assert len(seen) == 3  # groups of 3, 3, 1
    for text in seen:
        labels = re.findall(r"^\[(\d+)\]\. passage", text, flags=re.M)
        assert labels == [str(k) for k in range(1, len(labels) + 1)]
        assert f"I will provide you {len(labels)} documents" in text
        assert "Query:\nwhat is bm25\n\nDocuments:\n[1]. passage" in text
        assert '{"[1]": 5, "[2]": 3, "[3]": 8}' in text and "PRIMARY: Usefulness & Helpfulness" in text
    listed = [m for t in seen for m in re.findall(r"\]\. (passage \d+)", t)]
    assert sorted(listed) == sorted(d.text.split(" about")[0] for d in docs)  # disjoint groups cover all


def test_groupings_are_seeded_disjoint_and_differ_between_repeats():
    strat = Groupwise(load_template("grouprank"), {"group_size": 4, "repeats": 3, "seed": 11})
    groups = strat.groupings("q7", 10)
    assert len(groups) == 9 and groups == strat.groupings("q7", 10)
    for r in range(3):
        part = groups[3 * r : 3 * r + 3]
        assert sorted(i for g in part for i in g) == list(range(10)) and [len(g) for g in part] == [4, 4, 2]
    assert groups[:3] != groups[3:6]
    other = Groupwise(load_template("grouprank"), {"group_size": 4, "repeats": 3, "seed": 12})
    assert other.groupings("q7", 10) != groups


def test_repeats_average_scores_and_a_missing_score_counts_as_the_lowest():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(4)]
    calls = {"n": 0}

    def reply(prompt: str) -> str:
        calls["n"] += 1
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        # first grouping: every doc scores its index; second grouping: doc 3 is left out
        scores = {f"[{k}]": int(i) + (0 if calls["n"] == 1 else 4) for k, i in labels if calls["n"] == 1 or i != "3"}
        return "<answer>" + json.dumps(scores) + "</answer>"

    strat = Groupwise(load_template("grouprank"), {"group_size": 4, "repeats": 2})
    ranking = strat.rerank_many(ScriptedBackend(generate=reply), [(Query("q", "x"), docs)])[0]
    score = {d.docid: d.score for d in ranking.docs}
    assert score == {"d0": 2.0, "d1": 3.0, "d2": 4.0, "d3": 1.5}  # d3: (3 + 0) / 2
    assert ranking.metadata["grouprank_missing_scores"] == 1
    assert ranking.docids == ["d2", "d1", "d0", "d3"]


def test_unparsable_group_keeps_retrieval_order_below_the_scored_ones():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(6)]

    def reply(prompt: str) -> str:
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        if any(i == "0" for _, i in labels):
            return "I cannot decide, all of them look fine."
        return json.dumps({f"[{k}]": 10 - int(i) for k, i in labels})

    strat = Groupwise(load_template("grouprank"), {"group_size": 3, "seed": 5})
    ranking = strat.rerank_many(ScriptedBackend(generate=reply), [(Query("q", "x"), docs)])[0]
    lost = next(g for g in strat.groupings("q", 6) if 0 in g)
    kept = [i for i in range(6) if i not in lost]
    assert ranking.docids == [f"d{i}" for i in sorted(kept)] + [f"d{i}" for i in sorted(lost)]
    assert ranking.metadata["grouprank_unparsed_groups"] == 1
    assert ranking.metadata["grouprank_unscored_docs"] == 3


def test_bad_params_and_capability():
    with pytest.raises(ConfigError, match="group_size"):
        Reranker("grouprank-smollm2-135m", group_size=0)
    with pytest.raises(ConfigError, match="repeats"):
        Reranker("grouprank-smollm2-135m", repeats=0)
    from rerankkit import CapabilityError

    with pytest.raises(CapabilityError, match="GENERATE"):
        Reranker("grouprank-smollm2-135m", backend_instance=ScriptedBackend(score=lambda t, c: [0.0] * len(c)))
