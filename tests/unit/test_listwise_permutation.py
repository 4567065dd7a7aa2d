"""The permutation parser: repairs are exact and counted; nothing is ever lost or duplicated."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit.errors import ConfigError
from rerankkit.strategies.permutation import escape_identifiers, identifiers, parse_permutation

NUM5 = identifiers(5)
ALPHA5 = identifiers(5, "alpha")


def test_identifiers():
    assert identifiers(3) == ["1", "2", "3"]
    assert identifiers(20, "alpha")[-1] == "T"
    with pytest.raises(ConfigError):
        identifiers(27, "alpha")
    with pytest.raises(ConfigError):
        identifiers(3, "roman")


def test_clean_output_needs_no_repair():
    p = parse_permutation("[3] > [1] > [5] > [2] > [4]", NUM5)
    assert p.order == (2, 0, 4, 1, 3)
    assert not p.repaired and not p.failed


def test_unknown_duplicate_and_missing_are_dropped_appended_and_counted():
    p = parse_permutation("[3] > [9] > [3] > [0] > [1]", NUM5)
    assert p.order == (2, 0, 1, 3, 4)  # 3, 1, then the missing 2, 4, 5 in original order
    assert (p.unknown, p.duplicate, p.missing) == (2, 1, 3)
    assert p.repaired and not p.failed


def test_no_identifier_at_all_keeps_the_input_order():
    for text in ["", "I cannot rank these passages.", "[] > []", "[foo] [bar]"]:
        p = parse_permutation(text, NUM5)
        assert p.order == (0, 1, 2, 3, 4)
        assert p.failed and p.missing == 5


def test_bare_numbers_letters_and_lookalikes():
    # rank_llm's reading: every run of digits is an identifier, wherever it stands
    assert parse_permutation("2 > 1 > 3", NUM5).order[:3] == (1, 0, 2)
    assert parse_permutation("C > A > B", ALPHA5).order[:3] == (2, 0, 1)
    assert parse_permutation("[03] > [01]", NUM5).order[:2] == (2, 0)
    assert parse_permutation("［４］ > ［２］", NUM5).order[:2] == (3, 1)  # full-width digits
    assert parse_permutation("③ > ❶ > ⁵", NUM5).order[:3] == (2, 0, 4)  # circled and superscript digits
    assert parse_permutation("Ranking of 5 passages: [2] > [4]", NUM5).order[:3] == (4, 1, 3)  # prose counts
    # letters: each run reads as ord(c) - 64 digits, so lower case and words name no document
    assert parse_permutation("[c] > [a]", ALPHA5).failed
    assert parse_permutation("The best is [D]", ALPHA5).order[0] == 3
    # the FIRST prefix "[" followed by the generated rest
    assert parse_permutation("[" + "B] > [A] > [E]", ALPHA5).order[:3] == (1, 0, 4)
    # a reasoning model's thoughts are skipped; a digit int() cannot read discards the answer
    assert parse_permutation("<think>[1] > [2]</think> [3] > [2]", NUM5).order[:2] == (2, 1)
    p = parse_permutation("⑴ > [2]", NUM5)
    assert p.unreadable and p.failed and p.order == (0, 1, 2, 3, 4)


def test_escape_identifiers_in_documents():
    assert escape_identifiers("see [2] and [12] but not [x] or [B] or [ 3 ]") == \
        "see (2) and (12) but not [x] or [B] or [ 3 ]"


def _is_perm(order, n):
    return sorted(order) == list(range(n))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(st.sampled_from(list("[]>, 0123456789ABCTZabz\n-①３［］⁵") + ["[1]", "[20]", "[A]"]),
                    max_size=120).map("".join),
       n=st.integers(1, 20), alpha=st.booleans())
def test_random_outputs_always_give_a_permutation(text, n, alpha):
    labels = identifiers(n, "alpha" if alpha else "numeric")
    p = parse_permutation(text, labels)
    assert _is_perm(p.order, n)
    assert 0 <= p.missing <= n and p.unknown >= 0 and p.duplicate >= 0


_token = st.one_of(
    st.integers(-5, 40).map(lambda i: f"[{i}]"),  # in range, out of range, negative
    st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")).map(lambda c: f"[{c}]"),
    st.integers(0, 10**30).map(str),  # bare and huge numbers
    st.text(max_size=8),  # arbitrary junk, any unicode
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(_token, max_size=60), seps=st.sampled_from([" > ", ">", ", ", " ", "\n", "", " >> "]),
       n=st.integers(1, 26), alpha=st.booleans())
def test_adversarial_outputs_always_give_a_permutation(tokens, seps, n, alpha):
    labels = identifiers(n, "alpha" if alpha else "numeric")
    p = parse_permutation(seps.join(tokens), labels)
    assert _is_perm(p.order, n)


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), n=st.integers(1, 26), alpha=st.booleans())
def test_a_valid_prefix_is_kept_and_the_rest_appended_in_order(data, n, alpha):
    labels = identifiers(n, "alpha" if alpha else "numeric")
    perm = data.draw(st.permutations(list(range(n))))
    k = data.draw(st.integers(0, n))
    text = " > ".join(f"[{labels[i]}]" for i in perm[:k])
    p = parse_permutation(text, labels)
    rest = [i for i in range(n) if i not in perm[:k]]
    assert p.order == tuple(perm[:k]) + tuple(rest)
    assert p.missing == n - k and p.unknown == 0 and p.duplicate == 0
