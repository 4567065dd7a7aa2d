"""``rerankkit serve PRESET [--host 127.0.0.1] [--port N] [--api-key-env VAR] [--set KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ._common import add_presets_file, load_presets_files, parse_sets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a preset over HTTP with the common rerank API (Cohere/Jina/vLLM)",
                       description="Serve POST /v1/rerank and /v2/rerank (Cohere-style request and response), "
                                   "GET /health and GET /v1/models. Concurrent requests share model calls "
                                   "(micro-batching). Needs the 'server' extra.")
    p.add_argument("preset", help="preset name (see `rerankkit list`)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require 'Authorization: Bearer <key>' with the key read from environment variable VAR")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a spec field, strategy parameter or backend option (repeatable)")
    p.add_argument("--name", help="model name reported by the API (default: the preset name)")
    p.add_argument("--max-batch", type=int, default=32, metavar="N",
                   help="requests that may share one model call (1 = no micro-batching; default 32)")
    p.add_argument("--max-batch-documents", type=int, default=1024, metavar="N",
                   help="documents per micro-batch (default 1024)")
    p.add_argument("--max-queue", type=int, default=256, metavar="N",
                   help="queued requests before answering 503 (default 256)")
    p.add_argument("--max-documents", type=int, default=1000, metavar="N", help="documents per request")
    p.add_argument("--max-document-chars", type=int, default=20_000, metavar="N", help="characters per document")
    p.add_argument("--max-query-chars", type=int, default=4_000, metavar="N", help="characters per query")
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, metavar="N", help="request body size")
    p.add_argument("--score", choices=("sigmoid", "raw"), default="sigmoid",
                   help="relevance_score: sigmoid of the reranker score, in (0, 1) as Cohere's (default), or raw")
    p.add_argument("--request-timeout", type=float, default=300.0, metavar="S",
                   help="seconds from a request's arrival to its answer before it gets 503 (0 = no limit; "
                        "default 300)")
    p.add_argument("--graceful-timeout", type=float, default=60.0, metavar="S",
                   help="seconds to let requests in flight finish on shutdown (default 60)")
    add_presets_file(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..reranker import Reranker
    from ..server import ServerConfig, create_app, serve

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty")
    config = ServerConfig(
        model_name=args.name or args.preset, api_key=api_key, max_documents=args.max_documents,
        max_document_chars=args.max_document_chars, max_query_chars=args.max_query_chars,
        max_body_bytes=args.max_body_bytes, max_batch_requests=args.max_batch,
        max_batch_documents=args.max_batch_documents, max_queue_requests=args.max_queue, score=args.score,
        graceful_timeout_s=args.graceful_timeout, request_timeout_s=args.request_timeout or None,
    )
    load_presets_files(args.presets)
    reranker = Reranker(args.preset, **parse_sets(args.overrides))
    reranker.backend  # load the model before taking requests  # noqa: B018
    app = create_app(reranker, config)
    print(f"rerankkit: serving {config.model_name} on http://{args.host}:{args.port} "
          f"(POST /v1/rerank, /v2/rerank; GET /health, /v1/models)", file=sys.stderr, flush=True)
    try:
        stopped_by = serve(app, args.host, args.port, graceful_timeout_s=args.graceful_timeout,
                           limit_concurrency=args.max_queue + 64)
    finally:
        reranker.close()
    if stopped_by is not None:
        print(f"rerankkit: stopped by {signal.Signals(stopped_by).name} after finishing the requests in flight",
              file=sys.stderr)
    return 0
