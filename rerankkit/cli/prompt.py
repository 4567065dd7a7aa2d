"""``rerankkit prompt render PRESET --query Q --doc D [--doc D2 ...]``: exactly what the model sees."""

from __future__ import annotations

import argparse

from ._common import add_presets_file, load_presets_files, parse_sets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompt", help="prompt tools (render)", description="Prompt tools.")
    psub = p.add_subparsers(dest="prompt_command", metavar="ACTION")
    psub.required = True
    r = psub.add_parser("render", help="print the exact text the model sees for a query and documents",
                        description="Build the strategy's first round of requests for the query and documents "
                                    "and print each as the backend renders it (chat template applied). "
                                    "Loads the backend's model/tokenizer unless --messages is given.")
    r.add_argument("preset")
    r.add_argument("--query", "-q", required=True)
    r.add_argument("--doc", "-d", dest="docs", action="append", required=True, help="a document (repeatable)")
    r.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", help="override (repeatable)")
    r.add_argument("--messages", action="store_true",
                   help="print the structured messages instead (no backend or model is loaded)")
    add_presets_file(r)
    r.set_defaults(func=render)


def render(args: argparse.Namespace) -> int:
    from ..backends.base import without_breaks
    from ..reranker import Reranker
    from ..strategies.lockstep import GenerateRequest, PairRequest, render_request
    from ..text import repair_text
    from ..types import Query, as_doc

    load_presets_files(args.presets)
    reranker = Reranker(args.preset, **parse_sets(args.overrides))
    # as the reranker does: lone surrogates (undecodable bytes in the shell's arguments) become U+FFFD
    query = Query("q0", repair_text(args.query)[0])
    docs = [as_doc(repair_text(d)[0], i) for i, d in enumerate(args.docs)]
    if args.messages:
        requests = reranker.strategy.first_requests(query, docs, _NoTokenizer())
        for i, req in enumerate(requests, 1):
            print(f"=== request {i}/{len(requests)} {_what(req, GenerateRequest)}")
            if isinstance(req, PairRequest):
                print(f"--- query\n{req.query}\n--- document\n{req.doc}")
                continue
            prompt = _prompt_of(req)
            if isinstance(prompt, str):
                print(prompt)
                continue
            for m in prompt.messages:
                print(f"--- {m.role}\n{without_breaks(m.content)}")
            if prompt.prefix:
                print(f"--- assistant prefix\n{without_breaks(prompt.prefix)}")
        return 0
    backend = reranker.backend
    try:
        requests = reranker.strategy.first_requests(query, docs, backend)
        for i, req in enumerate(requests, 1):
            print(f"=== request {i}/{len(requests)} {_what(req, GenerateRequest)}")
            print(render_request(backend, req))
    finally:
        reranker.close()
    return 0


def _prompt_of(req):
    """The Prompt a request sends, or the plain text an embedding request embeds as is."""
    return req.text if hasattr(req, "text") else req.prompt


def _what(req, generate_cls) -> str:
    if isinstance(req, generate_cls):
        return f"(generate, max_new_tokens={req.max_new_tokens})"
    if hasattr(req, "text"):
        return "(embed)"
    if hasattr(req, "doc"):
        return "(relevance of a query-document pair)"
    return f"(score choices: {', '.join(repr(c) for c in req.choices)})"


class _NoTokenizer:
    """Stands in for a backend when only the messages are printed: counts words, never truncates."""

    name = "none"
    model_id = ""

    def options(self):
        return {}

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def truncate(self, text, max_tokens):
        return text
