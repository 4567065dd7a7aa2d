"""Listwise generation and FIRST over oracle and scripted backends: order, batching, repairs, budget."""

import random

import numpy as np
import pytest

from rerankkit import Doc, Query, Ranking, Reranker, Run
from rerankkit.backends.base import Message, Prompt
from rerankkit.backends.fake import OracleBackend, ScriptedBackend
from rerankkit.errors import CapabilityError, ConfigError, InputError
from rerankkit.prompts.formats import Format
from rerankkit.prompts.template import load_template
from rerankkit.strategies import STRATEGIES
from rerankkit.strategies.base import QueryContext
from rerankkit.strategies.listwise_prompt import build_prompt
from rerankkit.strategies.truncation import Truncator
from rerankkit.strategies.windows import window_schedule

GEN_PRESETS = ["listwise-smollm2-135m", "rankgpt", "rankzephyr-7b"]
FIRST_PRESETS = ["first-smollm2-135m", "first-zephyr", "first-mistral", "first-qwen3-0.6b"]


def make_docs(n, seed=0):
    rng = random.Random(seed)
    grades = list(range(n))
    rng.shuffle(grades)
    docs = [Doc(f"d{i}", f"passage number {i} about topic {chr(97 + i % 26)}{i}") for i in range(n)]
    return docs, {d.text: float(g) for d, g in zip(docs, grades)}


def ideal(docs, rel):
    return [d.docid for d in sorted(docs, key=lambda d: -rel[d.text])]


@pytest.mark.parametrize("preset", GEN_PRESETS + FIRST_PRESETS)
def test_oracle_gives_the_ideal_order_in_one_window(preset):
    docs, rel = make_docs(20)
    backend = OracleBackend(rel)
    ranking = Reranker(preset, backend_instance=backend).rerank("which passage?", docs)
    assert ranking.docids == ideal(docs, rel)
    assert ranking.metadata["windows"] == 1 and backend.usage.calls == 1
    assert ranking.metadata.get("parse_repaired_windows", 0) == 0


@pytest.mark.parametrize("preset", ["listwise-smollm2-135m", "first-smollm2-135m"])
def test_sliding_windows_bring_the_best_to_the_top(preset):
    docs, rel = make_docs(57, seed=3)
    backend = OracleBackend(rel)
    ranking = Reranker(preset, backend_instance=backend, window=10, stride=4).rerank("q", docs)
    assert sorted(ranking.docids) == sorted(d.docid for d in docs)
    assert ranking.docids[:6] == ideal(docs, rel)[:6]  # window - stride guaranteed
    assert ranking.metadata["windows"] == len(window_schedule(57, 10, 4)) == backend.usage.calls


def test_enough_passes_sort_everything():
    docs, rel = make_docs(30, seed=5)
    ranking = Reranker("first-smollm2-135m", backend_instance=OracleBackend(rel), window=10, stride=5,
                       passes=6).rerank("q", docs)
    assert ranking.docids == ideal(docs, rel)
    assert ranking.metadata["windows"] == 6 * len(window_schedule(30, 10, 5))


@pytest.mark.parametrize("preset", ["listwise-smollm2-135m", "first-smollm2-135m"])
def test_windows_of_all_queries_share_each_backend_call(preset):
    items, rel = [], {}
    for k in range(3):
        docs, r = make_docs(40, seed=k)
        docs = [Doc(f"q{k}-{d.docid}", f"q{k} {d.text}") for d in docs]
        rel.update({f"q{k} {t}": g for t, g in r.items()})
        items.append((Query(f"q{k}", f"query {k}"), docs))
    backend = OracleBackend(rel)
    rankings = Reranker(preset, backend_instance=backend).rerank_many(items)
    assert backend.usage.calls == 9  # 3 windows per query (40 docs, w20 s10)
    assert backend.usage.batches == 3  # each call carried one window of every query
    for (_, docs), ranking in zip(items, rankings):
        assert ranking.docids[:10] == ideal(docs, rel)[:10]


class Recording(ScriptedBackend):
    """A scripted backend that also records the generation budget and may declare a context."""

    def __init__(self, *args, context_length=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_new: list[int] = []
        self.min_new: list[int] = []
        self._context = context_length

    def max_input_tokens(self):
        return self._context  # the protocol's way to declare a context

    def generate(self, prompts, max_new_tokens, sampling=None):
        self.max_new.append(max_new_tokens)
        self.min_new.append(sampling[0].min_new_tokens if sampling else 0)
        return super().generate(prompts, max_new_tokens)


def test_repairs_are_counted_per_query_and_in_the_run():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(5)]
    backend = Recording(generate=lambda text: "[2] > [2] > [99] > [1] > so that is it")
    reranker = Reranker("listwise-smollm2-135m", backend_instance=backend)
    run = Run([Ranking.from_order(Query("q1", "a query"), docs, range(5))])
    out = reranker.rerank_run(run)
    r = out["q1"]
    assert r.docids == ["d1", "d0", "d2", "d3", "d4"]
    m = r.metadata
    assert (m["parse_duplicate_ids"], m["parse_unknown_ids"], m["parse_missing_ids"]) == (1, 1, 3)
    assert m["parse_repaired_windows"] == 1 and m["parse_failed_windows"] == 0
    assert out.metadata["totals"]["parse_missing_ids"] == 3
    assert out.metadata["totals"]["windows"] == 1


def test_garbage_output_keeps_the_input_order_and_is_counted():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(4)]
    backend = Recording(generate=lambda text: "I am sorry, I cannot do that.")
    r = Reranker("listwise-smollm2-135m", backend_instance=backend).rerank("q", docs)
    assert r.docids == ["d0", "d1", "d2", "d3"]
    assert r.metadata["parse_failed_windows"] == 1 and r.metadata["parse_missing_ids"] == 4


def test_max_new_tokens_is_sized_to_the_window():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(25)]
    backend = Recording(generate=lambda text: "[1]")
    Reranker("listwise-smollm2-135m", backend_instance=backend).rerank("q", docs)
    # rank_llm's estimate: tokens of "[1] > ... > [20]" (39 whitespace tokens) minus 1; the top window
    # (0, 15) gets 29 - 1; as in rank_llm, generation may not stop before (min = max)
    assert backend.max_new == [38, 28] and backend.min_new == [38, 28]
    backend = Recording(generate=lambda text: "[1]")
    Reranker("listwise-smollm2-135m", backend_instance=backend, max_new_tokens=7).rerank("q", docs[:3])
    assert backend.max_new == [7] and backend.min_new == [7]
    backend = Recording(generate=lambda text: "[1]")
    Reranker("listwise-smollm2-135m", backend_instance=backend, min_new_tokens=0).rerank("q", docs[:3])
    assert backend.min_new == [0]


def test_first_scores_the_identifier_letters_after_an_open_bracket():
    seen = []

    def score(text, choices):
        seen.append((text, choices))
        return [-3.0, -1.0, -2.0, -1.0, -9.0]  # B and D tie: input order breaks it

    docs = [Doc(f"d{i}", f"text {i}") for i in range(5)]
    r = Reranker("first-smollm2-135m", backend_instance=ScriptedBackend(score=score)).rerank("q", docs)
    assert r.docids == ["d1", "d3", "d2", "d0", "d4"]
    (text, choices), = seen
    assert choices == ("A", "B", "C", "D", "E")
    assert text.endswith("do not say any word or explain.[")
    assert "[A] text 0\n[B] text 1\n" in text


def test_first_needs_score_and_single_token_identifiers():
    with pytest.raises(CapabilityError):
        Reranker("first-smollm2-135m", backend_instance=ScriptedBackend(generate=lambda t: ""))
    with pytest.raises(ConfigError):
        Reranker("first-smollm2-135m", window=27, stride=10)
    with pytest.raises(ConfigError):
        Reranker("first-smollm2-135m", template="rank-zephyr")


@pytest.mark.parametrize("window,stride", [(20, 20), (10, 12), (10, 0)])
def test_stride_not_below_window_is_rejected(window, stride):
    with pytest.raises(ConfigError):
        Reranker("listwise-smollm2-135m", window=window, stride=stride)


def test_generation_accepts_the_first_prompt():
    docs, rel = make_docs(12)
    r = Reranker("first-smollm2-135m", strategy="listwise", backend_instance=OracleBackend(rel)).rerank("q", docs)
    assert r.docids == ideal(docs, rel)


def test_identifiers_inside_documents_are_escaped():
    seen = []
    docs = [Doc("a", "see [2] and [B] here"), Doc("b", "other")]
    backend = ScriptedBackend(generate=lambda t: seen.append(t) or "[2] > [1]")
    Reranker("listwise-smollm2-135m", backend_instance=backend).rerank("q [1]?", docs)
    assert "[1] see (2) and [B] here\n" in seen[0] and "search query: q (1)?." in seen[0]


def test_parens_identifiers_escape_size_and_train_in_their_own_wrapping():
    """A format listing "(3)" (as rerankkit robustness samples): "(2)" in a passage or the query is written
    "[2]", the answer estimate counts "(1) > (2) > ...", the answer is read, FIRST's target continues "("."""
    counted, seen = [], []

    class Counting(Recording):
        def count_tokens(self, texts):
            counted.extend(texts)
            return super().count_tokens(texts)

    zephyr = Format(enumeration="parens").apply(load_template("rank-zephyr"))
    strategy = STRATEGIES.get("listwise")(zephyr, {})
    assert strategy.wrapper == ("(", ")")
    backend = Counting(generate=lambda t: seen.append(t) or "(2) > (1)")
    docs = [Doc("a", "see (2) and [3] here"), Doc("b", "other")]
    r = strategy.rerank_many(backend, [(Query("q", "q (1)?"), docs)])[0]
    assert r.docids == ["b", "a"] and r.metadata.get("parse_repaired_windows", 0) == 0
    assert "(1) see [2] and [3] here\n" in seen[0] and "q [1]?" in seen[0]
    assert "(1) > (2)" in counted and "[1] > [2]" not in counted

    first = STRATEGIES.get("first")(Format(enumeration="parens").apply(load_template("first")), {})
    backend = ScriptedBackend(score=lambda t, c: np.zeros(len(c)))
    shown = first.training_prompt(Query("q", "q"), [Doc("a", "x"), Doc("b", "y"), Doc("c", "z")], [1, 2, 0],
                                  QueryContext(backend, Truncator(backend, None)))
    assert shown.prompt.prefix.endswith("(") and shown.target == "B) > (C) > (A)"
    assert shown.labels == ("A", "B", "C")


def test_small_inputs():
    backend = OracleBackend({})
    r = Reranker("first-smollm2-135m", backend_instance=backend)
    assert r.rerank("q", []).docids == []
    assert r.rerank("q", ["only one"]).docids == ["0"]
    assert backend.usage.calls == 0  # a window of one document needs no model


# -- prompt budget ---------------------------------------------------------------------------

def test_passages_are_cut_to_300_words_scaled_by_the_window():
    seen = []
    docs = [Doc(f"d{i}", f"doc{i} " + " ".join(f"w{k}" for k in range(700))) for i in range(10)]
    backend = ScriptedBackend(generate=lambda t: seen.append(t) or "[1]")
    r = Reranker("listwise-smollm2-135m", backend_instance=backend, window=10, stride=5,
                 max_prompt_tokens=100_000).rerank("q", docs)
    lines = [ln for ln in seen[0].splitlines() if ln.startswith("[")]
    assert [len(ln.split()) - 1 for ln in lines] == [600] * 10  # 300 words x 20 / 10 documents
    assert r.metadata["truncated_docs"] == 10


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("mode", ["listwise", "first"])
def test_window_over_the_context_is_truncated_evenly_not_dropped(mode, cached, tmp_path):
    long = [Doc(f"L{i}", f"long{i} " + " ".join(f"w{i}_{k}" for k in range(99))) for i in range(5)]
    docs = [*long, Doc("S", "short document of six words")]
    kw = {"generate": lambda t: "[6] > [1]"} if mode == "listwise" else {"score": lambda t, c: np.zeros(len(c))}
    backend = Recording(context_length=300, **kw)
    cache = {"cache": tmp_path / "answers.sqlite"} if cached else {}  # the answer cache passes the context through
    r = Reranker("first-smollm2-135m", strategy=mode, backend_instance=backend, **cache).rerank("q", docs)
    assert sorted(r.docids) == sorted(d.docid for d in docs)
    (prompt,) = backend.seen
    reserve = backend.max_new[0] if mode == "listwise" else 1
    assert len(prompt.split()) + reserve <= 300
    for d in long:
        assert f"] long{d.docid[1:]} " in prompt  # every document is still there ...
    lengths = [len(line.split()) for line in prompt.splitlines() if line.startswith("[") and "long" in line]
    assert len(lengths) == 5 and max(lengths) - min(lengths) == 0 and lengths[0] < 101  # ... cut evenly
    assert "short document of six words" in prompt
    assert r.metadata["budget_truncated_windows"] == 1 and r.metadata["budget_truncated_docs"] == 5
    assert r.metadata["truncated_docs"] == 5


def test_max_prompt_tokens_param_and_impossible_budget():
    docs = [Doc(f"d{i}", " ".join(["word"] * 50)) for i in range(4)]
    backend = ScriptedBackend(score=lambda t, c: np.zeros(len(c)))
    r = Reranker("first-smollm2-135m", backend_instance=backend, max_prompt_tokens=200).rerank("q", docs)
    assert r.metadata["budget_truncated_docs"] == 4 and len(backend.seen[0].split()) <= 199
    with pytest.raises(InputError, match="smaller window"):
        Reranker("first-smollm2-135m", backend_instance=backend, max_prompt_tokens=60).rerank("q", docs)


# -- templates are the published prompts ------------------------------------------------------

def test_rank_zephyr_prompt_is_exact():
    p = build_prompt(load_template("rank-zephyr"), "what is bm25", ["1", "2"], ["doc one", "doc two"], False)
    assert p.messages[0] == Message(
        "system", "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query")
    assert p.messages[1].content == (
        "I will provide you with 2 passages, each indicated by a numerical identifier []. Rank the passages based on "
        "their relevance to the search query: what is bm25.\n[1] doc one\n[2] doc two\nSearch Query: what is bm25.\n"
        "Rank the 2 passages above based on their relevance to the search query. All the passages should be included "
        "and listed using identifiers, in descending order of relevance. The output format should be [] > [], e.g., "
        "[2] > [1], Answer concisely and directly and only respond with the ranking results, do not say any word or "
        "explain.")
    assert p.prefix == ""


def test_first_prompt_is_exact():
    p = build_prompt(load_template("first"), "q", ["A", "B"], ["x", "y"], False)
    assert p.messages[1].content == (
        "I will provide you with 2 passages, each indicated by a alphabetical identifier []. Rank the passages based "
        "on their relevance to the search query: q.\n\n[A] x\n[B] y\nSearch Query: q.\nRank the 2 passages above "
        "based on their relevance to the search query. All the passages should be included and listed using "
        "identifiers, in descending order of relevance. The output format should be [] > [], e.g., [B] > [A], Only "
        "respond with the ranking results, do not say any word or explain.")
    assert p.prefix == "["


def test_rank_gpt_prompt_is_a_conversation():
    p = build_prompt(load_template("rank-gpt"), "q", ["1", "2"], ["x", "y"], True)
    assert [m.role for m in p.messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant",
                                            "user"]
    assert p.messages[1].content == ("I will provide you with 2 passages, each indicated by number identifier [].\n"
                                     "Rank the passages based on their relevance to query: q.")
    assert [m.content for m in p.messages[2:6]] == ["Okay, please provide the passages.", "[1] x",
                                                    "Received passage [1].", "[2] y"]
    assert p.messages[-1].content.startswith("Search Query: q.\nRank the 2 passages above")
    assert p.messages[-1].content.endswith("e.g., [1] > [2]. Only response the ranking results, do not say any word "
                                           "or explain.")
    assert isinstance(p, Prompt)
