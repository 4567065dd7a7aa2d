"""The groupwise JSON score reader: known reply shapes, and fuzzing that it never loses a document."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit.backends.fake import ScriptedBackend
from rerankkit.prompts.template import load_template
from rerankkit.strategies.groupwise import Groupwise
from rerankkit.strategies.jsonscores import parse_group_scores
from rerankkit.types import Doc, Query


def test_fenced_json_inside_answer_tags_after_reasoning():
    reply = ('<reason>\n[1] is about cats {not json}. [2]: great.\n</reason>\n<answer>\n```json\n'
             '{"[1]": 2, "[2]": 9, "[3]": 5}\n```\n</answer>')
    res = parse_group_scores(reply, 3)
    assert res.scores == {1: 2.0, 2: 9.0, 3: 5.0} and res.source == "json" and res.missing == []


def test_key_styles_strings_and_nesting():
    assert parse_group_scores('{"1": 3, "Doc 2": "7", "[3]]": 4.5}', 3).scores == {1: 3.0, 2: 7.0, 3: 4.5}
    assert parse_group_scores('{"scores": {"[1]": 1, "[2]": 2}}', 2).scores == {1: 1.0, 2: 2.0}
    items = '[{"id": "[2]", "score": 8}, {"id": 1, "score": 3}]'
    assert parse_group_scores('{"ranking": ' + items + '}', 2).scores == {1: 3.0, 2: 8.0}


def test_missing_extra_clamped_and_truncated():
    res = parse_group_scores('Sure! {"[1]": 4, "[7]": 9, "[3]": 14} hope that helps', 3)
    assert res.scores == {1: 4.0, 3: 10.0} and res.missing == [2] and res.extra_keys == 1 and res.clamped == 1
    cut = parse_group_scores('<answer>```json\n{"[1]": 6, "[2]": 2, "[3', 3)  # generation hit max tokens
    assert cut.scores == {1: 6.0, 2: 2.0} and cut.source == "repaired"


def test_the_last_object_that_scores_the_group_wins():
    reply = 'Example format {"[1]": 0, "[2]": 0}. My answer: {"[1]": 7, "[2]": 1} {"note": "done"}'
    assert parse_group_scores(reply, 2).scores == {1: 7.0, 2: 1.0}


def test_nothing_readable():
    for reply in ("", None, "I think [1] > [2].", "[1]: 5, [2]: 3", '{"verdict": "good"}', "{{{", '{"[1]": "high"}'):
        res = parse_group_scores(reply, 2)
        assert not res.parsed and res.scores == {} and res.missing == [1, 2]


KEY_STYLES = ['"[{k}]"', '"{k}"', '"[{k}]]"', '"Doc {k}"', "[{k}]", "'{k}'"]


@st.composite
def replies(draw):
    n = draw(st.integers(1, 25))
    scored = draw(st.lists(st.integers(1, n), unique=True, max_size=n))
    values = {k: draw(st.integers(-3, 14)) for k in scored}
    extra = draw(st.lists(st.integers(n + 1, n + 5), unique=True, max_size=3))
    style = draw(st.sampled_from(KEY_STYLES))
    keys = [*scored, *extra]
    draw(st.randoms()).shuffle(keys)
    body = "{" + ", ".join(f"{style.format(k=k)}: {values.get(k, 5)}" for k in keys) + "}"
    wrap = draw(st.sampled_from(["{b}", "```json\n{b}\n```", "<reason>{p}</reason>\n<answer>\n{b}\n</answer>",
                                 "{p}\n{b}\n{p}", "{b}"]))
    prose = draw(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=60))
    reply = wrap.format(b=body, p=prose)
    if draw(st.booleans()):
        reply = reply[: draw(st.integers(0, len(reply)))]  # generation cut anywhere
    return n, reply, values, style, extra


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
def test_fuzz_scores_are_exact_where_readable_and_never_out_of_range(case):
    n, reply, values, style, _ = case
    res = parse_group_scores(reply, n)
    assert set(res.scores) <= set(range(1, n + 1))
    assert all(0.0 <= v <= 10.0 for v in res.scores.values())
    assert sorted(res.missing + list(res.scores)) == list(range(1, n + 1))
    for k, v in res.scores.items():  # whatever was read is what the reply said (clamped to the scale)
        assert v == min(10, max(0, values.get(k, 5)))
    whole = reply.rstrip().endswith(("}", "```", "</answer>")) and "{" in reply and reply.count("}") >= 1
    if whole and values and "'" not in style and reply.count("{") == 1:
        assert set(res.scores) == set(values)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(1, 30))
def test_fuzz_arbitrary_text_never_raises(text, n):
    res = parse_group_scores(text, n)
    assert set(res.scores) <= set(range(1, n + 1))
    assert all(0.0 <= v <= 10.0 for v in res.scores.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), replies().map(lambda c: c[1])), min_size=1, max_size=8),
       st.integers(1, 30), st.integers(1, 7), st.integers(1, 3), st.sampled_from(["reference", "lenient"]))
def test_fuzz_groupwise_never_loses_or_duplicates_a_document(replies_list, n_docs, group_size, repeats, parse):
    feed = iter(replies_list * 200)
    backend = ScriptedBackend(generate=lambda _prompt: next(feed))
    strat = Groupwise(load_template("grouprank"), {"group_size": group_size, "repeats": repeats, "parse": parse})
    docs = [Doc(f"d{i}", f"document number {i}") for i in range(n_docs)]
    ranking = strat.rerank_many(backend, [(Query("q", "query"), docs)])[0]
    assert sorted(ranking.docids) == sorted(d.docid for d in docs)
    meta = ranking.metadata
    assert meta["grouprank_groups"] == repeats * -(-n_docs // group_size)
    n_unscored = meta["grouprank_unscored_docs"]
    assert 0 <= n_unscored <= n_docs
    scored, unscored = ranking.docs[: n_docs - n_unscored], ranking.docs[n_docs - n_unscored :]
    if scored and unscored:  # every scored document above every unscored one
        assert min(d.score for d in scored) > max(d.score for d in unscored)
    assert [d.docid for d in unscored] == sorted((d.docid for d in unscored), key=lambda x: int(x[1:]))
    json.dumps(dict(meta))  # metadata stays serialisable
