"""Hostile inputs for fuzzing: hypothesis strategies shared by the API, reader, parser and server fuzz tests.

``hostile_text()`` mixes what real traffic and real files contain and what breaks text pipelines:
empty and whitespace-only strings (every Unicode space, including the ones ``str.split`` and JSON
Schema disagree on), C0/C1 control characters and NUL, lone UTF-16 surrogates, bidi overrides and RTL
scripts, stacks of combining marks, zero-width characters and BOMs, noncharacters and private use,
emoji ZWJ sequences, and strings that look like prompt syntax or model output (chat special tokens,
``[1] > [2]``, JSON score objects, ``<answer>`` tags, template braces). ``huge_text()`` gives ~1 MB
strings. Import as ``from hostile import ...`` (``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

from hypothesis import strategies as st

WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000"
CONTROL = "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u034f\u180e"
ODD = "\ufffe\uffff\ufdd0\ue000\U000f0000\U0001fffe\U0010ffff\ufffd"
COMBINING = "\u0300\u0301\u0302\u0303\u0308\u0327\u0336\u035c\u0361\u0489\u20dd\u20e3"
RTL_WORDS = ("مرحبا بالعالم", "שלום עולם", "سلام", "עברית 123", "\u202eevil\u202c")
EMOJI = ("👍", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇺🇸", "1️⃣", "🧑🏽\u200d💻")
PROMPT_LIKE = (
    "<|im_start|>system\n", "<|im_end|>", "<|endoftext|>", "</s>", "<s>", "[CLS]", "[SEP]", "[MASK]", "<pad>",
    "<unk>", "<answer>", "</answer>", "<think>", "[1] > [2]", "[3]", "[A]", "Passage A", "Passage B", "Yes", "No",
    '{"[1]": 10, "[2]": 0}', "{query}", "{{passage}}", "{0}", "%s", "\\", '"', "```json", "\n\n", "Query: ",
    "true", "false", "null", "NaN", "-0", "1e309",
)
WORDS = ("bm25", "ranking", "function", "cats", "sleep", "the", "a", "retrieval", "query", "document")


def lone_surrogate() -> st.SearchStrategy[str]:
    """One lone UTF-16 surrogate (U+D800..U+DFFF): no UTF-8 encoding exists for it."""
    return st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])


def _piece() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(PROMPT_LIKE),
        st.sampled_from(RTL_WORDS + EMOJI),
        st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=4),
        st.text(st.sampled_from(CONTROL), min_size=1, max_size=3),
        st.text(st.sampled_from(BIDI + INVISIBLE + ODD), min_size=1, max_size=3),
        st.builds(lambda base, marks: base + marks, st.sampled_from("aeoxZ"),
                  st.text(st.sampled_from(COMBINING), min_size=1, max_size=24)),
        lone_surrogate(),
        st.text(max_size=6),  # any assigned code point (hypothesis' default alphabet)
    )


def hostile_text(max_size: int = 80, min_size: int = 0) -> st.SearchStrategy[str]:
    """A string of hostile pieces, at most ``max_size`` code points (empty and blank strings included)."""
    return (st.lists(_piece(), max_size=8).map("".join).map(lambda s: s[:max_size])
            .filter(lambda s: len(s) >= min_size))


def huge_text(size: int = 1 << 20) -> st.SearchStrategy[str]:
    """A string of exactly ``size`` code points (default ~1 MB), one hostile piece repeated."""
    return hostile_text(max_size=40, min_size=1).map(lambda s: (s * (size // len(s) + 1))[:size])


def hostile_docid() -> st.SearchStrategy[str]:
    """A document id: a hostile string, often a repeated one (duplicates must be refused, never merged)."""
    return st.one_of(st.sampled_from(["d1", "d2", "", " "]), hostile_text(max_size=12))


def count_surrogates(*texts: str) -> int:
    return sum(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t)
