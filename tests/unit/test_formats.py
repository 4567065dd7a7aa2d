"""The format grammar: every sampled format of every template renders, keeps its placeholders and its
strategy's schema, and the strategy reads back the answers the format asks for."""

from __future__ import annotations

import pytest
import yaml

from rerankkit.backends.fake import OracleBackend
from rerankkit.errors import ConfigError
from rerankkit.prompts import Template, load_template, template_names
from rerankkit.prompts.formats import AXES, VALUES, Format, format_space, sample_formats, signature
from rerankkit.prompts.grammar import analyse
from rerankkit.strategies import STRATEGIES
from rerankkit.strategies.labels import LABELS, parse_label
from rerankkit.strategies.listwise_prompt import identifier_wrapper
from rerankkit.strategies.permutation import escape_identifiers, identifiers, parse_permutation
from rerankkit.types import Doc, Query

K = 12  # formats sampled per template and seed


def _enumerations(t: Template):
    return STRATEGIES.get(t.strategy).format_enumerations if t.strategy in STRATEGIES else ()


def _formats(t: Template) -> list[Format]:
    seen, out = set(), []
    for seed in (0, 1):
        for f in sample_formats(t, K, seed, _enumerations(t)):
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out


CASES = [(name, f) for name in template_names() for f in _formats(load_template(name))]


@pytest.mark.parametrize("name", template_names())
def test_the_original_format_is_the_template_and_the_sample_is_distinct(name):
    t = load_template(name)
    formats = sample_formats(t, K, 0, _enumerations(t))
    assert formats[0] == Format() and Format().apply(t) is t
    if set(t.parts.values()) <= {"{query}", "{doc}"}:  # a bare (query, document) pair: no wording to vary
        assert formats == [Format()]
        return
    assert len(formats) >= 4, f"{name}: the grammar finds too little to vary"
    sigs = [signature(f.apply(t)) for f in formats]
    assert len(set(sigs)) == len(sigs)  # every sampled format renders differently
    assert sample_formats(t, K, 0, _enumerations(t)) == formats  # reproducible from the seed


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}:{f.key()}" for n, f in CASES])
def test_every_sampled_format_renders_keeps_placeholders_and_round_trips(name, fmt):
    t = load_template(name)
    u = fmt.apply(t)
    assert set(u.parts) == set(t.parts)
    for part in t.parts:
        assert u.placeholders(part) == t.placeholders(part), part
    assert set(u.choices) == set(t.choices)
    if t.strategy in STRATEGIES:
        STRATEGIES.get(t.strategy)(u)  # its strategy's schema and checks accept it
    back = Template.from_dict(yaml.safe_load(yaml.safe_dump(u.to_dict(), allow_unicode=True, sort_keys=False)))
    assert signature(back) == signature(u)


@pytest.mark.parametrize(("name", "fmt"), [c for c in CASES if load_template(c[0]).choices],
                         ids=lambda x: x.key() if isinstance(x, Format) else x)
def test_pointwise_choices_cover_the_answer_words_the_prompt_names(name, fmt):
    t = load_template(name)
    u = fmt.apply(t)
    words = analyse(t).answer_words
    text = "\n".join(u.parts.values())
    for label, word in words.items():
        styled = {"as-is": word, "upper": word.upper(), "lower": word.lower(), "title": word.title()}[fmt.answers]
        assert styled in text
        assert styled in {v.strip() for v in u.choices[label]}
        assert set(t.choices[label]) <= set(u.choices[label])  # the original answers still count


@pytest.mark.parametrize(("name", "fmt"), [c for c in CASES if "answer" in load_template(c[0]).parts],
                         ids=lambda x: x.key() if isinstance(x, Format) else x)
def test_comparison_answers_in_every_format_parse_back(name, fmt):
    u = fmt.apply(load_template(name))
    for n in (2, 3):
        for label in LABELS[:n]:
            answer = u.fill("answer", label=label)
            assert parse_label(answer, LABELS[:n]) == label, answer
            # and the prompt names the passages the way the answers do
    if "Passage A" in load_template(name).parts.get("user", ""):
        shown = u.fill("answer", label="A")
        assert shown in u.parts["user"]


@pytest.mark.parametrize(("name", "fmt"), [c for c in CASES if load_template(c[0]).strategy in ("listwise", "first")],
                         ids=lambda x: x.key() if isinstance(x, Format) else x)
def test_listwise_identifiers_and_their_parser_stay_consistent(name, fmt):
    u = fmt.apply(load_template(name))
    o, c = identifier_wrapper(u)
    assert (o, c) in (("[", "]"), ("(", ")"))
    style = str(u.extra.get("identifiers", "numeric"))
    ids = identifiers(5, style)
    answer = " > ".join(f"{o}{i}{c}" for i in (ids[2], ids[0], ids[4], ids[1], ids[3]))
    prefix = u.parts.get("prefix", "")
    if prefix:
        assert prefix.endswith(o)  # FIRST's pre-filled "[" follows the wrapper
        answer = prefix + answer[len(o):]
    parsed = parse_permutation(answer, ids, (o, c))
    assert parsed.order == (2, 0, 4, 1, 3) and not parsed.repaired
    everything = "\n".join(v for k, v in u.parts.items() if k != "item")
    other = "()" if o == "[" else "[]"
    assert f"{other[0]}{ids[0]}{other[1]}" not in everything  # no reference left in the old wrapping
    assert escape_identifiers(f"see {o}{ids[1]}{c}", style, (o, c)) != f"see {o}{ids[1]}{c}"


STRATEGY_PARAMS = {"pairwise": {"method": "allpair"}, "setwise": {"method": "heapsort", "k": 5},
                   "listwise": {"window": 5, "stride": 2}, "first": {"window": 5, "stride": 2},
                   "embedding": {"mode": "listwise"}, "groupwise": {"repeats": 1, "temperature": 0.0}}


@pytest.mark.parametrize(("name", "fmt"), [c for c in CASES if load_template(c[0]).strategy in STRATEGIES
],
                         ids=lambda x: x.key() if isinstance(x, Format) else x)
def test_a_perfect_judge_ranks_perfectly_in_every_format(name, fmt):
    """The oracle reads the prompt as a model would; any lost label, answer or identifier shows up here."""
    t = load_template(name)
    u = fmt.apply(t)
    docs = [Doc(f"d{i}", f"passage number {i} says {w}") for i, w in enumerate(["alpha", "beta", "gamma", "delta",
                                                                                "epsilon"])]
    rel = {d.text: float(i) * 0.7 for i, d in enumerate(docs)}
    strategy = STRATEGIES.get(t.strategy)(u, STRATEGY_PARAMS.get(t.strategy, {}))
    ranking = strategy.rerank_many(OracleBackend(rel), [(Query("q", "which passage?"), docs)])[0]
    assert ranking.docids == ["d4", "d3", "d2", "d1", "d0"]


def test_axes_change_what_they_say():
    yes_no = load_template("yes-no")
    u = Format(casing="upper", separator="dash", spacing="blank-line", answers="lower").apply(yes_no)
    assert u.parts["user"].startswith("PASSAGE - {doc}\n\nQUERY - {query}\n")
    assert "Answer 'yes' or 'no'" in u.parts["user"]
    prp = Format(casing="lower", enumeration="parens", separator="newline").apply(load_template("prp"))
    assert 'passage (A)\n"{passage_a}"' in prp.parts["user"] and "Output passage (A) or passage (B):" in prp.parts["user"]
    assert prp.parts["answer"] == "passage ({label})"
    first = Format(enumeration="parens").apply(load_template("first"))
    assert first.parts["item"].startswith("({id}) ") and first.parts["prefix"] == "("
    assert "e.g., (B) > (A)" in first.parts["tail"] and "[" not in first.parts["tail"]
    e2 = Format(enumeration="descriptor", casing="upper").apply(load_template("e2rank"))
    assert e2.parts["item"].startswith("DOCUMENT {id}: ")


def test_identifier_styles_the_references_cannot_follow_are_not_offered():
    space = format_space(load_template("rank-zephyr"))  # "[] > []" in the answer format
    assert set(space["enumeration"]) == {"as-is", "parens"}
    assert "dot" in format_space(load_template("e2rank"))["enumeration"]  # nothing refers to e2rank's ids
    assert format_space(load_template("grouprank"), ())["enumeration"] == ("as-is",)  # its JSON keys stay [k]


def test_format_records_parse_and_reject_bad_values():
    f = Format(casing="upper", enumeration="parens")
    assert Format.parse(f.key()) == f and Format.parse("original") == Format()
    assert set(f.to_dict()) == set(AXES) and all(v[0] == "as-is" for v in VALUES.values())
    with pytest.raises(ConfigError, match="casing must be one of"):
        Format(casing="shouting")
    with pytest.raises(ConfigError):
        Format.parse("casing")
    with pytest.raises(ConfigError):
        sample_formats(load_template("yes-no"), 0)
