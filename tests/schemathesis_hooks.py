"""Schemathesis hooks for fuzzing the rerank server: hostile text injected into schema-generated bodies.

Schemathesis generates requests from the server's OpenAPI schema, but never lone surrogates, control
characters or prompt-like text; this hook replaces, in about half of the rerank bodies, one document's
text (and sometimes the query) by a :func:`hostile.hostile_text`. Schemathesis re-validates the case
afterwards, so a body the injection made invalid is expected to be refused. Loaded with
``SCHEMATHESIS_HOOKS=schemathesis_hooks`` and ``tests/`` on ``PYTHONPATH`` (see ``eval/fuzz_server.py``).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hostile import hostile_text
from hypothesis import strategies as st


def _inject(body: dict[str, Any], choice: tuple[bool, int, str, bool, str]) -> dict[str, Any]:
    use, index, text, query_too, query = choice
    if not use:
        return body
    out = dict(body)
    docs = list(out["documents"])
    i = index % len(docs)
    docs[i] = {**docs[i], "text": text} if isinstance(docs[i], dict) else text
    out["documents"] = docs
    if query_too and query.strip() and isinstance(out.get("query"), str):
        out["query"] = query
    return out


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    if not isinstance(body, dict) or not isinstance(body.get("documents"), list) or not body["documents"]:
        return st.just(body)
    choice = st.tuples(st.booleans(), st.integers(0, 1 << 16), hostile_text(), st.booleans(), hostile_text())
    return choice.map(lambda c: _inject(body, c))
