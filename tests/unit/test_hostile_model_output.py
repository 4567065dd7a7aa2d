"""Hostile model output: PRP/setwise answers and GroupRank JSON replies, parsed, repaired and counted exactly.

Extends the permutation fuzzing of ``test_listwise_permutation.py`` / ``test_jsonscores.py`` to the
comparison strategies and to degenerate replies (kilobytes of whitespace, brackets, digits or repeated
labels — the shapes a small model falls into). Checks: a full permutation always; the ``unparsed`` counter
of PRP/setwise equals the number of answers :func:`parse_label` reads nothing from; the GroupRank
counters equal what the GroupRank reader in use (``parse="reference"`` or ``"lenient"``) reports group by
group; parsers stay linear in the reply's length (the lenient key pattern and the reference reader's
code-fence pattern used to backtrack for minutes on a run of spaces).
"""

from __future__ import annotations

import json
import re

import pytest
from hostile import PROMPT_LIKE, hostile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit import Reranker
from rerankkit.backends.fake import ScriptedBackend
from rerankkit.strategies.jsonscores import parse_group_scores, read_reference_scores
from rerankkit.strategies.labels import LABELS, parse_label

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
LABEL_BITS = ("Passage A", "passage b", "Passage: C", "(B)", "B.", "Passage A or Passage B", "Document D",
              "doc #a", "A", "b", "Z", "Passage", "[A]", "**Passage B**", "Answer: Passage C\n")
REPLY = st.lists(st.one_of(st.sampled_from(LABEL_BITS), hostile_text(max_size=30)), max_size=5).map(" ".join)
DEGENERATE = [" " * 20_000, "\n" * 20_000, "[" * 20_000, "{" + " " * 20_000, "{" + "[" * 20_000, "9" * 20_000,
              "Passage " * 5_000, "passage:" * 5_000, '{"[1]": ' * 3_000, "{" + "doc " * 5_000, '"' * 20_000,
              "<answer>" * 3_000, "{" + '"1": 5, ' * 3_000, "{" + "1:" * 10_000, "```json" + " " * 20_000,
              "```json" + " " * 10_000 + "``" + " " * 10_000 + "```", "<answer>```json" + " " * 20_000 + "</answer>",
              "```json\n" + "[" * 20_000 + "\n```", "{" * 20_000]


@FUZZ
@given(reply=REPLY, size=st.integers(2, 6))
def test_parse_label_names_an_allowed_label_that_the_reply_mentions(reply, size):
    labels = LABELS[:size]
    got = parse_label(reply, labels)
    assert got is None or (got in labels and got.lower() in reply.lower())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reply", DEGENERATE, ids=[repr(d[:12]) for d in DEGENERATE])
def test_degenerate_replies_are_read_in_linear_time(reply):
    parse_label(reply, LABELS[:3])
    for read in (parse_group_scores, read_reference_scores):  # GroupRank's lenient and reference readers
        res = read(reply, 5)
        assert set(res.scores) <= {1, 2, 3, 4, 5}


def _label_count(prompt: str) -> int:
    return len(set(re.findall(r'Passage ([A-Z]): "doc', prompt))) or 2  # setwise lists them; PRP compares two


@FUZZ
@given(replies=st.lists(REPLY, min_size=1, max_size=12), n=st.integers(1, 7),
       config=st.sampled_from([("prp-smollm2-135m", {"method": "heapsort", "k": 3}),
                               ("prp-smollm2-135m", {"method": "sliding", "k": 2}),
                               ("prp-smollm2-135m", {"method": "allpair"}),
                               ("setwise-smollm2-135m", {"method": "heapsort", "k": 3}),
                               ("setwise-smollm2-135m", {"method": "bubblesort", "k": 2, "num_child": 3})]))
def test_comparison_answers_are_counted_exactly(replies, n, config):
    asked: list[tuple[str, str]] = []

    def generate(prompt: str) -> str:
        reply = replies[len(asked) % len(replies)]
        asked.append((prompt, reply))
        return reply

    preset, params = config
    r = Reranker(preset, backend_instance=ScriptedBackend(generate=generate), mode="generate", **params)
    docs = [f"doc{i}" for i in range(n)]
    ranking = r.rerank("q", docs)
    assert sorted(ranking.docids, key=int) == [str(i) for i in range(n)]
    unreadable = sum(parse_label(reply, LABELS[: _label_count(prompt)]) is None for prompt, reply in asked)
    assert ranking.metadata["unparsed"] == unreadable


KEYS = st.one_of(st.integers(-2, 9).map(str), st.sampled_from(["[1]", "[2]]", "Doc 3", "passage_4", "id", "x"]),
                 hostile_text(max_size=6))
VALUES = st.one_of(st.integers(-50, 50), st.floats(allow_nan=True, allow_infinity=True), hostile_text(max_size=6),
                   st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
JSON_REPLY = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=6).map(json.dumps),
    st.tuples(hostile_text(), st.dictionaries(KEYS, VALUES, max_size=6).map(json.dumps), hostile_text(),
              st.integers(0, 60)).map(lambda t: (t[0] + "<answer>```json\n" + t[1] + "\n```</answer>" + t[2])[
                  : max(1, len(t[0]) + 20 + t[3])]),  # wrapped, and often cut off by max_new_tokens
    st.sampled_from(PROMPT_LIKE + tuple(d[:2000] for d in DEGENERATE)),
    hostile_text(),
)


@pytest.mark.parametrize("parse", ["reference", "lenient"])
@FUZZ
@given(replies=st.lists(JSON_REPLY, min_size=1, max_size=6), n=st.integers(1, 9), group_size=st.integers(2, 4),
       repeats=st.integers(1, 2))
def test_grouprank_counters_match_the_parser(parse, replies, n, group_size, repeats):
    asked: list[tuple[int, str]] = []

    def generate(prompt: str) -> str:
        reply = replies[len(asked) % len(replies)]
        asked.append((len(re.findall(r"^\[\d+\]", prompt, re.M)), reply))
        return reply

    r = Reranker("grouprank-smollm2-135m", backend_instance=ScriptedBackend(generate=generate),
                 group_size=group_size, repeats=repeats, parse=parse)
    read = read_reference_scores if parse == "reference" else parse_group_scores
    docs = [f"doc{i}" for i in range(n)]
    ranking = r.rerank("q", docs)
    assert sorted(ranking.docids, key=int) == [str(i) for i in range(n)]
    m = ranking.metadata
    assert m["grouprank_groups"] == len(asked) == repeats * -(-n // group_size)
    parsed = [read(reply, size) for size, reply in asked]
    assert m["grouprank_unparsed_groups"] == sum(not p.parsed for p in parsed)
    assert m["grouprank_missing_scores"] == sum(len(p.missing) for p in parsed if p.parsed)
    assert m["grouprank_extra_keys"] == sum(p.extra_keys for p in parsed if p.parsed)
    assert m["grouprank_clamped_scores"] == sum(p.clamped for p in parsed if p.parsed)
    if parse == "lenient":  # the reference reader keeps values as given; the lenient one clamps to the scale
        assert all(0 <= s <= 10 for p in parsed for s in p.scores.values())


FENCE_BITS = st.sampled_from(["```json", "```", "`", "{", "}", " ", "\n", "<answer>", "</answer>", '"[1]": 3',
                              '"[2]": 7', "x", ","])


@FUZZ
@given(parts=st.lists(FENCE_BITS, max_size=12), n=st.integers(1, 3))
def test_reference_reader_guard_changes_no_result(parts, n):
    """Searching only up to the last closing token finds what the unguarded patterns find."""
    from unittest import mock

    from rerankkit.strategies import jsonscores

    text = "".join(parts)
    guarded = read_reference_scores(text, n)
    with mock.patch.object(jsonscores, "_through_last", lambda t, token: len(t)):
        unguarded = read_reference_scores(text, n)
    assert guarded == unguarded
