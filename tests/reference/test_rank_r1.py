"""Rank-R1's prompt and answer reading against the reference code (ielab/llm-rankers on GitHub).

``RankR1SetwiseLlmRanker`` exists only in the GitHub sources (not in the PyPI release), which CI cannot
download: this test runs when ``RERANKKIT_LLMRANKERS_GITHUB`` names a checkout of ielab/llm-rankers (or its
git directory) and is skipped otherwise. The reference's ``compare`` runs unmodified; its vLLM engine (the
``llm`` attribute) is replaced by a stand-in that records the chat messages and returns a given completion.

- Prompt: for the order in which the reference shows 20 passages (it shuffles them), rerankkit's
  ``rank-r1`` template gives the same system and user messages, character for character.
- Reading: on a fuzz set of completions, rerankkit's strict reading names the same document as the
  reference (or, like it, none); with repair on, it differs only where the reference found no answer, and
  every such case is counted as repaired.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from rerankkit.prompts.template import load_template
from rerankkit.strategies import STRATEGIES
from rerankkit.strategies.labels import read_think_answer

FILES = ("llmrankers/__init__.py", "llmrankers/rankers.py", "llmrankers/setwise.py",
         "Rank-R1/prompts/prompt_setwise-R1.toml")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    src = os.environ.get("RERANKKIT_LLMRANKERS_GITHUB")
    if not src:
        pytest.skip("set RERANKKIT_LLMRANKERS_GITHUB to a checkout of github.com/ielab/llm-rankers")
    root, out = Path(src), tmp_path_factory.mktemp("llmrankers-github")
    for name in FILES:
        target = out / name.replace("llmrankers/", "llmrankers_github/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (root / name).is_file():
            target.write_bytes((root / name).read_bytes())
        else:  # a bare git directory (e.g. a mirror)
            target.write_bytes(subprocess.run(["git", f"--git-dir={root}", "show", f"HEAD:{name}"],
                                              check=True, capture_output=True).stdout)
    sys.path.insert(0, str(out))
    state = random.getstate()
    try:
        import llmrankers_github.setwise as sw  # seeds random on import; prints that vllm is missing
    finally:
        random.setstate(state)
        sys.path.remove(str(out))
    prompt = tomllib.loads((out / FILES[-1]).read_text())
    return sw, prompt


class Engine:
    """Stands in for vLLM's ``LLM``: records the chat messages, answers with ``completion``."""

    def __init__(self):
        self.completion = ""
        self.messages = None

    def chat(self, conversations, **_):
        self.messages = conversations[0]
        done = SimpleNamespace(text=self.completion, token_ids=[0])
        return [SimpleNamespace(outputs=[done], prompt_token_ids=[0])]


def make_ranker(sw, prompt):
    ranker = object.__new__(sw.RankR1SetwiseLlmRanker)  # its compare() without loading a model
    ranker.prompt, ranker.verbose, ranker.lora_path, ranker.sampling_params = prompt, False, None, None
    ranker.num_permutation, ranker.num_child, ranker.k, ranker.method = 1, 19, 10, "heapsort"
    ranker.total_compare = ranker.total_completion_tokens = ranker.total_prompt_tokens = 0
    ranker.llm = Engine()
    return ranker


QUERY = "how long is the life cycle of a flea"
TEXTS = [f"passage {i}: the flea life cycle takes {i + 2} weeks in warm weather" for i in range(20)]


def test_prompt_equals_the_reference(reference):
    sw, prompt = reference
    ranker = make_ranker(sw, prompt)
    docs = [sw.SearchResult(docid=str(i), text=t, score=0.0) for i, t in enumerate(TEXTS)]
    ranker.llm.completion = "<think> x </think> <answer>[1]</answer>"
    ranker.compare(QUERY, docs)
    system, user = ranker.llm.messages
    shown = [int(m) for m in re.findall(r"^\[\d+\] passage (\d+):", user["content"], re.M)]
    assert sorted(shown) == list(range(20)) and shown != list(range(20))  # the reference shuffles
    strat = STRATEGIES.get("setwise")(load_template("rank-r1"), {"num_child": 19, "mode": "generate"})
    ours = strat.group_prompt(QUERY, TEXTS, tuple(shown))
    assert [m.role for m in ours.messages] == [system["role"], user["role"]] == ["system", "user"]
    assert ours.messages[0].content == system["content"]
    assert ours.messages[1].content == user["content"]
    assert ours.prefix == ""


def fuzz_completions(seed: int = 0) -> list[str]:
    fixed = [
        "<think> doc 3 answers it </think> <answer>[3]</answer>", "<think>x</think>\n<answer>[20]</answer>",
        "<THINK> x </THINK> <ANSWER>[7]</ANSWER>", "<think> x </think><answer> [2] </answer>",
        "<think> x </think> <answer>3</answer>", "<answer>[3]</answer>", "<think> x </think> <answer>[21]</answer>",
        "<think> x </think> <answer>[0]</answer>", "<think> x </think> <answer>[3]", "[3]", "",
        "<think> a </think> b <answer>[4]</answer>", "<think> x </think> <answer>[ 5 ]</answer>",
        "<think> x </think> <answer>[1]</answer> <think> y </think> <answer>[2]</answer>",
        "<think> <answer>[9]</answer> </think> <answer>[8]</answer>", "<think> x </think> <answer>[3], [4]</answer>",
        "<think> unfinished reasoning that ran out of tokens", "<think></think><answer>[12]</answer>",
    ]
    rng = random.Random(seed)
    parts = ["<think>", "</think>", "<answer>", "</answer>", "[3]", "[19]", "[25]", "7", " ", "\n", "text", "[", "]"]
    return fixed + ["".join(rng.choice(parts) for _ in range(rng.randint(1, 8))) for _ in range(300)]


def test_reading_equals_the_reference(reference):
    sw, prompt = reference
    ranker = make_ranker(sw, prompt)
    docs = [sw.SearchResult(docid=str(i), text=t, score=0.0) for i, t in enumerate(TEXTS)]
    answers = [f"[{i + 1}]" for i in range(20)]
    repaired_cases = 0
    for completion in fuzz_completions():
        ranker.llm.completion = completion
        out = ranker.compare(QUERY, docs)  # the label of the chosen document in the input order, or not a label
        user = ranker.llm.messages[1]["content"]
        shown = [int(m) for m in re.findall(r"^\[\d+\] passage (\d+):", user, re.M)]
        want = ranker.CHARACTERS.index(out) if out in ranker.CHARACTERS else None
        strict, was_repaired = read_think_answer(completion, answers, repair=False)
        assert not was_repaired
        assert (None if strict is None else shown[strict]) == want, completion
        fixed, was_repaired = read_think_answer(completion, answers, repair=True)
        if want is not None:
            assert (shown[fixed], was_repaired) == (want, False), completion
        elif fixed is not None:
            assert was_repaired, completion
            repaired_cases += 1
    assert repaired_cases > 0
