"""GroupRank against its official inference code, read from the source (not on a package registry).

Reference: AQ-MedAI/Diver at commit 95b111b0adad85bf388e628b9073552055f6f408, ``Reranker/rerank_groupwise.py``
(it imports vLLM and ``datasets`` at module level and runs only on a GPU with vLLM, so it is not run
here). What it does, and what these tests hold rerankkit to:

- prompts: ``group_system_prompt`` and ``group_user_prompt`` (checked by sha256 below), formatted with
  TOPK/QUERY/PASSAGES, documents as ``"[{i}]. {text}\\n\\n"`` with newline runs collapsed to one space
  and cut to ``max_doc_len`` = 3,000 characters; chat messages [system, user] with the generation prompt;
- decoding: ``SamplingParams(temperature=0.3, top_p=0.8, max_tokens=8000)``, 2 rounds (``num_epoch``) of
  shuffled disjoint groups of 20 (``group_size`` = ``interval`` = 20 in its published script);
- reading a reply (``_extract_rerank_output`` and the loop after it): the first ``<answer>...</answer>``
  if any; the last fenced ``json`` block, else the last ``{...}`` (up to its first ``}``); ``"[7]]"`` ->
  ``"[7]"``; one ``}`` appended when one is missing; whitespace runs collapsed; ``json.loads``; every key
  ``int(key.strip().strip("[]"))`` indexes the group, every value is divided by 10; any exception
  scores the whole group 0;
- merging: a document's score is the mean of the scores it received (a readable reply that leaves a
  document out gives it nothing); optional merge ``0.6 * score + 0.4 * first-stage score``.

The table's expected outcomes were worked out by hand from that code.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from rerankkit import Doc, Query
from rerankkit.backends.fake import ScriptedBackend
from rerankkit.prompts.template import load_template
from rerankkit.strategies.groupwise import Groupwise
from rerankkit.strategies.jsonscores import read_reference_scores

SYSTEM_SHA = "0bfaa7a5baca4fd62246f987cf22b9335f1b009c6d733f22840b0369bb432ffa"
USER_TEMPLATE_SHA = "b8ab00cd0219913cbd830d5548950bedd65cfdaa3a943ee08c19c95bd18cec07"
# group_user_prompt.format(QUERY="what is bm25?", PASSAGES=<"alpha beta", "gamma" laid out>, TOPK=2)
USER_FILLED_SHA = "72a09f1f10fb9635b2f55763b6d47d9ea5b76a1748610e9b574a29884a741543"


def test_prompts_are_the_references_byte_for_byte():
    tpl = load_template("grouprank")
    assert hashlib.sha256(tpl.parts["system"].encode()).hexdigest() == SYSTEM_SHA
    as_reference = tpl.parts["user"].replace("{num}", "{TOPK}").replace("{query}", "{QUERY}") \
        .replace("{documents}", "{PASSAGES}")
    assert hashlib.sha256(as_reference.encode()).hexdigest() == USER_TEMPLATE_SHA
    strat = Groupwise(tpl, {"repeats": 1})
    prompt = strat.prompt(Query("q", "what is bm25?"), ["alpha beta", "gamma"])
    assert [m.role for m in prompt.messages] == ["system", "user"] and prompt.prefix == ""
    assert hashlib.sha256(prompt.messages[1].content.encode()).hexdigest() == USER_FILLED_SHA


def test_documents_and_decoding_are_the_references():
    seen, samplings = [], []

    class Recorder(ScriptedBackend):
        def generate(self, prompts, max_new_tokens, sampling=None):
            samplings.extend(sampling)
            return super().generate(prompts, max_new_tokens, sampling)

    doc = Doc("d", "line one\n\n\nline two\n" + "z" * 4000)
    strat = Groupwise(load_template("grouprank"), {})
    strat.rerank_many(Recorder(generate=lambda t: seen.append(t) or "{}"), [(Query("q", "x"), [doc])])
    assert len(seen) == 2  # two rounds
    shown = re.search(r"\[1\]\. (.*?)\n\n", seen[0], flags=re.S).group(1)
    assert shown == ("line one line two " + "z" * 4000)[:3000]
    assert all((s.temperature, s.top_p) == (0.3, 0.8) and s.seed is not None for s in samplings)
    assert strat.params.group_size == 20


ANSWER = '<reason>\n[1] is on topic {not json}.\n</reason>\n<answer>\n```json\n{"[1]": 5, "[2]": 3, "[3]": 8}\n``` \n</answer>'
CASES = [  # (reply, n, scores the reference reads, or None: the group scores 0)
    (ANSWER, 3, {1: 5, 2: 3, 3: 8}),
    ('prose {"[1]": 7} more {"[2]": 4, "[3]": 1} end', 3, {2: 4, 3: 1}),  # the last {...}
    ('<answer>{"[1]": 2, "[2]]": 9}</answer>', 2, {1: 2, 2: 9}),  # "[2]]" repaired
    ('```json\n{"[1]": 6, "[2]": 2\n```', 2, {1: 6, 2: 2}),  # the missing brace appended
    ('{"[1]": 6, "[2]": 2, "[3', 3, None),  # cut off: no {...} at all
    ('{"1": 4, " [2] ": 5}', 2, {1: 4, 2: 5}),
    ('{"Doc 1": 4}', 1, None),  # not a bracketed integer
    ('{"[1]": "high"}', 1, None),  # a string score
    ('{"[1]": 15, "[2]": -2}', 2, {1: 15, 2: -2}),  # kept as given
    ('{"[4]": 5}', 3, None),  # outside the group
    ('{"[1]": 5.5, "[3]": true}', 3, {1: 5.5, 3: 1}),
    ("{}", 2, {}),  # readable, scores nothing
    ("I think [1] > [2].", 2, None),
    ('<answer>{"[1]": 1}</answer> <answer>{"[2]": 2}</answer>', 2, {1: 1}),  # the first answer section
    ('```json\n{"[1]": 3}\n```\n```json\n{"[2]": 7}\n```', 2, {2: 7}),  # the last fenced block
    ('{"a": {"[1]": 2}}', 1, None),  # a nested object is no score
    ('[{"[1]": 2}]', 1, {1: 2}),
    ('<answer>\n```json\n{"[1]":\n 4,\n\n "[2]": 6}\n```\n</answer>', 2, {1: 4, 2: 6}),
    (None, 2, None),
]


@pytest.mark.parametrize("reply, n, expected", CASES)
def test_replies_are_read_as_the_reference_reads_them(reply, n, expected):
    res = read_reference_scores(reply, n)
    if expected is None:
        assert not res.parsed
    else:
        assert res.parsed and res.scores == {k: float(v) for k, v in expected.items()}


def test_the_two_documented_differences():
    # the reference would index from the group's end for "[0]" and keep a NaN; both are unreadable here
    assert not read_reference_scores('{"[0]": 5}', 3).parsed
    assert not read_reference_scores('{"[1]": NaN}', 3).parsed


def test_merge_as_the_reference_means_over_received_scores_and_zeros_for_unreadable_groups():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(4)]
    strat = Groupwise(load_template("grouprank"), {"group_size": 2, "repeats": 2, "seed": 3})
    groups = strat.groupings("q", 4)
    replies = {0: '{"[1]": 8, "[2]": 6}', 1: "no idea", 2: '{"[2]": 10}', 3: '{"[1]": 4, "[2]": 2}'}
    calls = iter(range(4))
    ranking = strat.rerank_many(ScriptedBackend(generate=lambda _t: replies[next(calls)]), [(Query("q", "x"), docs)])[0]
    received: dict[int, list[float]] = {i: [] for i in range(4)}
    for g, group in enumerate(groups):  # the reference's rules, by hand
        scores = {0: {1: 8, 2: 6}, 1: None, 2: {2: 10}, 3: {1: 4, 2: 2}}[g]
        for label, doc in enumerate(group, start=1):
            if scores is None:
                received[doc].append(0.0)
            elif label in scores:
                received[doc].append(scores[label] / 10)
    want = {f"d{i}": sum(v) / len(v) for i, v in received.items() if v}
    got = {sd.docid: sd.score for sd in ranking.docs}
    assert {k: got[k] for k in want} == pytest.approx(want)
    assert all(got[f"d{i}"] < min(want.values()) for i, v in received.items() if not v)
