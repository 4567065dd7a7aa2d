"""GroupRank groupwise reranking over the oracle and scripted backends."""

from __future__ import annotations

import json
import re

import pytest

from rerankkit import ConfigError, Doc, Query, Ranking, Reranker, Run, ScoredDoc
from rerankkit.backends.base import Sampling
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
        self.samplings: list[Sampling] = []

    def generate(self, prompts, max_new_tokens, sampling=None):
        self.batches.append(len(prompts))
        self.samplings.extend(sampling or [Sampling()] * len(prompts))
        return super().generate(prompts, max_new_tokens, sampling)


@pytest.mark.parametrize("preset", ["grouprank-smollm2-135m", "diver-grouprank-7b"])
def test_oracle_gives_the_ideal_order_and_all_groups_of_all_queries_go_in_one_sampled_call(preset):
    docs, rel = corpus(45)
    oracle = CountingOracle(rel)
    r = Reranker(preset, backend_instance=oracle)
    items = [(Query("q1", "first query"), docs), (Query("q2", "second query"), docs[::-1][:30])]
    rankings = r.rerank_many(items)
    assert oracle.batches == [2 * (3 + 2)]  # 2 groupings x (ceil(45/20) + ceil(30/20)) groups, one backend call
    # the reference's decoding: temperature 0.3, top-p 0.8, every group its own seed
    assert {(s.temperature, s.top_p) for s in oracle.samplings} == {(0.3, 0.8)}
    assert len({s.seed for s in oracle.samplings}) == 10
    for (_, ds), ranking in zip(items, rankings):
        grades = [rel[d.doc.text] for d in ranking.docs]
        assert grades == sorted(grades, reverse=True)
        # ties keep the input (retrieval) order
        for g in set(grades):
            tied = [d.docid for d in ranking.docs if rel[d.doc.text] == g]
            assert tied == [d.docid for d in ds if rel[d.text] == g]
        assert ranking.metadata["grouprank_unparsed_groups"] == 0
        assert ranking.metadata["grouprank_missing_scores"] == 0
        assert all(0.0 <= d.score <= 1.0 for d in ranking.docs)  # mean score / 10, as the reference


def test_temperature_0_is_greedy_and_seeds_follow_the_seed_parameter():
    strat = Groupwise(load_template("grouprank"), {"temperature": 0})
    assert strat.sampling("q", 0).greedy
    a = Groupwise(load_template("grouprank"), {"seed": 1})
    b = Groupwise(load_template("grouprank"), {"seed": 2})
    assert a.sampling("q", 0) == a.sampling("q", 0) != b.sampling("q", 0)
    assert a.sampling("q", 0).seed != a.sampling("q", 1).seed != a.sampling("q2", 1).seed
    docs, rel = corpus(5)
    oracle = CountingOracle(rel)
    Reranker("grouprank-smollm2-135m", backend_instance=oracle, temperature=0).rerank_many([(Query("q", "x"), docs)])
    assert oracle.samplings and all(s.greedy for s in oracle.samplings)


def test_prompt_lists_every_group_member_with_labels_and_the_published_format():
    docs, rel = corpus(7)
    seen = []
    backend = ScriptedBackend(generate=lambda text: seen.append(text) or "{}")
    strat = Groupwise(load_template("grouprank"), {"group_size": 3, "repeats": 1})
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


def test_documents_are_shown_on_one_line_and_cut_to_max_doc_chars():
    seen = []
    backend = ScriptedBackend(generate=lambda text: seen.append(text) or "{}")
    doc = Doc("d0", "first line\n\n\nsecond line\nthird " + "x" * 5000, title="T")
    Groupwise(load_template("grouprank"), {"repeats": 1}).rerank_many(backend, [(Query("q", "x"), [doc])])
    shown = re.search(r"\[1\]\. (.*)\n\n\n\n## Final", seen[0], flags=re.S).group(1)
    assert shown == ("T: first line second line third " + "x" * 5000)[:3000]
    seen.clear()
    Groupwise(load_template("grouprank"), {"repeats": 1, "max_doc_chars": None}).rerank_many(
        backend, [(Query("q", "x"), [doc])])
    assert "x" * 5000 in seen[0]


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


def test_repeats_average_the_scores_received_and_a_score_left_out_counts_nothing():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(4)]
    calls = {"n": 0}

    def reply(prompt: str) -> str:
        calls["n"] += 1
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        # first grouping: every doc scores its index; second grouping: +4, and doc 3 is left out
        scores = {f"[{k}]": int(i) + (0 if calls["n"] == 1 else 4) for k, i in labels if calls["n"] == 1 or i != "3"}
        return "<answer>\n```json\n" + json.dumps(scores) + "\n```\n</answer>"

    strat = Groupwise(load_template("grouprank"), {"group_size": 4, "repeats": 2})
    ranking = strat.rerank_many(ScriptedBackend(generate=reply), [(Query("q", "x"), docs)])[0]
    score = {d.docid: round(d.score, 9) for d in ranking.docs}
    assert score == {"d0": 0.2, "d1": 0.3, "d2": 0.4, "d3": 0.3}  # d3: 3 / 10 from the one round that scored it
    assert ranking.metadata["grouprank_missing_scores"] == 1
    assert ranking.docids == ["d2", "d1", "d3", "d0"]


def test_an_unreadable_reply_scores_its_group_0_and_an_empty_one_leaves_it_unscored():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(6)]
    strat = Groupwise(load_template("grouprank"), {"group_size": 2, "repeats": 1, "seed": 5})
    zero, empty, _ = strat.groupings("q", 6)

    def reply(prompt: str) -> str:
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        members = sorted(int(i) for _, i in labels)
        if members == sorted(zero):
            return "I cannot decide, all of them look fine."
        if members == sorted(empty):
            return "<answer>{}</answer>"
        return json.dumps({f"[{k}]": 10 - int(i) for k, i in labels})

    ranking = strat.rerank_many(ScriptedBackend(generate=reply), [(Query("q", "x"), docs)])[0]
    kept = [i for i in range(6) if i not in zero + empty]
    assert ranking.docids == [f"d{i}" for i in sorted(kept)] + [f"d{i}" for i in sorted(zero)] + \
        [f"d{i}" for i in sorted(empty)]
    assert [d.score for d in ranking.docs[2:4]] == [0.0, 0.0]
    assert all(d.score < 0 for d in ranking.docs[4:])
    meta = ranking.metadata
    assert (meta["grouprank_unparsed_groups"], meta["grouprank_unscored_docs"], meta["grouprank_missing_scores"]) \
        == (1, 2, 2)


def test_first_stage_weight_blends_in_rerank_run_as_the_reference_merge():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(4)]
    grades = {"d0": 2, "d1": 9, "d2": 9, "d3": 5}

    def reply(prompt: str) -> str:
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        return json.dumps({f"[{k}]": grades[f"d{i}"] for k, i in labels if i != "3"})  # d3 never scored

    first = {"d0": 3.0, "d1": 0.1, "d2": 0.5, "d3": 9.0}
    run = Run([Ranking(Query("q", "x"), tuple(ScoredDoc(d, first[d.docid]) for d in docs))])
    backend = ScriptedBackend(generate=reply)
    plain = Reranker("grouprank-smollm2-135m", backend_instance=backend, group_size=2).rerank_run(run)["q"]
    assert plain.docids == ["d1", "d2", "d0", "d3"]
    blended = Reranker("grouprank-smollm2-135m", backend_instance=backend, group_size=2,
                       first_stage_weight=0.4).rerank_run(run)["q"]
    expect = {d: 0.6 * grades[d] / 10 + 0.4 * first[d] for d in ("d0", "d1", "d2")}
    assert blended.docids == ["d0", "d2", "d1", "d3"]  # 1.32, 0.74, 0.58; d3 (unscored) stays last
    assert {d.docid: round(d.score, 9) for d in blended.docs[:3]} == {k: round(v, 9) for k, v in expect.items()}
    assert blended.docs[3].score < blended.docs[2].score


def test_bad_params_and_capability():
    with pytest.raises(ConfigError, match="group_size"):
        Reranker("grouprank-smollm2-135m", group_size=0)
    with pytest.raises(ConfigError, match="repeats"):
        Reranker("grouprank-smollm2-135m", repeats=0)
    with pytest.raises(ConfigError, match="parse must be one of 'reference', 'lenient'"):
        Reranker("grouprank-smollm2-135m", parse="strict")
    with pytest.raises(ConfigError, match="temperature"):
        Reranker("grouprank-smollm2-135m", temperature=-1)
    with pytest.raises(ConfigError, match="top_p"):
        Reranker("grouprank-smollm2-135m", top_p=0)
    with pytest.raises(ConfigError, match="first_stage_weight"):
        Reranker("grouprank-smollm2-135m", first_stage_weight=1.5)
    from rerankkit import CapabilityError

    with pytest.raises(CapabilityError, match="GENERATE"):
        Reranker("grouprank-smollm2-135m", backend_instance=ScriptedBackend(score=lambda t, c: [0.0] * len(c)))


def test_arerank_run_merges_the_first_stage_as_rerank_run():
    """The async path ends where the blocking one does: the strategy's merge_first_stage, then the tail."""
    import asyncio

    docs = [Doc(f"d{i}", f"text {i}") for i in range(5)]
    grades = {"d0": 2, "d1": 9, "d2": 9, "d3": 5, "d4": 1}

    def reply(prompt: str) -> str:
        labels = re.findall(r"^\[(\d+)\]\. text (\d)", prompt, flags=re.M)
        return json.dumps({f"[{k}]": grades[f"d{i}"] for k, i in labels})

    first = {"d0": 3.0, "d1": 0.1, "d2": 0.5, "d3": 9.0, "d4": -1.0}
    run = Run([Ranking(Query("q", "x"), tuple(ScoredDoc(d, first[d.docid]) for d in docs))])
    r = Reranker("grouprank-smollm2-135m", backend_instance=ScriptedBackend(generate=reply), group_size=2,
                 first_stage_weight=0.4)
    sync = r.rerank_run(run, depth=4)["q"]
    got = asyncio.run(r.arerank_run(run, depth=4))["q"]
    r.close()
    assert got.docids == sync.docids == ["d3", "d0", "d2", "d1", "d4"]  # blended, d4 below the depth
    assert [round(d.score, 9) for d in got.docs] == [round(d.score, 9) for d in sync.docs]
