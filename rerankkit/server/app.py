"""The FastAPI app: ``POST /v1/rerank``, ``/v2/rerank`` and ``/rerank`` (Cohere/Jina/vLLM shape, or TEI's
when the body has ``texts``), ``POST /score`` and ``/v1/score`` (vLLM), ``GET /health`` and ``GET /v1/models``.

``create_app(reranker, config)`` takes any :class:`~rerankkit.Reranker` (tests pass one over the
oracle backend). Requests are validated (:mod:`.protocol`, :mod:`.shapes`), then micro-batched
(:mod:`rerankkit.batching`). Every reply carries its token usage (in the body, and in ``x-compute-tokens``).
"""

# no `from __future__ import annotations`: FastAPI reads the (locally imported) Request annotation
import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from .._lazy import require
from ..batching import MicroBatcher, Overloaded
from ..errors import InputError, RerankkitError
from ..reranker import Reranker
from .config import ServerConfig
from .handlers import Handlers, is_tei
from .openapi import HEALTH_SCHEMA, MODELS_SCHEMA, plain_operation, rerank_operation
from .protocol import RequestError, dump_json, error_body, token_usage
from .shapes import tei_error

log = logging.getLogger(__name__)


def create_app(reranker: Reranker, config: ServerConfig | None = None) -> Any:
    """A FastAPI app serving ``reranker`` under the common rerank API (see module docstring)."""
    fastapi = require("fastapi", "server", "the rerank server")
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse as _StarletteJSON

    class JSONResponse(_StarletteJSON):
        def render(self, content: Any) -> bytes:  # an echoed lone surrogate must not fail the reply
            return dump_json(content)

    cfg = config or ServerConfig()
    batcher = MicroBatcher(reranker.rerank_many, cfg.max_batch_requests, cfg.max_batch_documents,
                           cfg.max_queue_requests, cfg.max_queue_documents, count_tokens=True)
    handlers = Handlers(batcher, reranker.strategy, cfg)
    started = int(time.time())
    admission = Admission(cfg.max_queue_requests + cfg.max_batch_requests)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        log.info("serving %s (micro-batching up to %d requests)", cfg.model_name, cfg.max_batch_requests)
        try:
            yield
        finally:
            # the HTTP server has stopped taking requests and waited for those in flight
            batcher.stop(cfg.graceful_timeout_s)

    app = fastapi.FastAPI(title="rerankkit rerank server", lifespan=lifespan, docs_url=None, redoc_url=None,
                          default_response_class=JSONResponse)
    app.state.batcher = batcher
    app.state.admission = admission
    app.state.config = cfg

    def refuse(status: int, message: str, kind: str = "invalid_request_error",
               headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_body(status, message, kind), status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return refuse(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", "not_found_error"
                      if exc.status_code == 404 else "invalid_request_error", exc.headers)  # 405 keeps Allow

    def check_key(request: Request) -> None:
        if cfg.api_key is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                               "authentication_error")
        if not hmac.compare_digest(token.strip().encode(), cfg.api_key.encode()):
            raise RequestError(401, "invalid API key", "authentication_error")

    async def read_body(request: Request) -> bytes:
        limit = cfg.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"the request body has {declared} bytes; the limit is max_body_bytes={limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"the request body exceeds max_body_bytes={limit}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def answer(request: Request, handle: Any, is_tei: Any = None) -> JSONResponse:
        """Admit, validate, rerank and reply; every refusal in the request shape's own error format.

        ``handle(body) -> (reply, batch results)``; ``is_tei(body)`` says whether the body is TEI's shape."""
        tei = False

        def fail(status: int, message: str, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> JSONResponse:
            if tei:
                status = 429 if status == 503 else status
                return JSONResponse(tei_error(status, message), status_code=status, headers=headers)
            return refuse(status, message, kind, headers)

        if not admission.enter():
            return refuse(503, f"server overloaded: {admission.count} requests in progress (max_queue_requests + "
                               f"max_batch_requests = {admission.limit}); retry later", "overloaded_error",
                          {"Retry-After": "1"})
        reading = True
        try:
            async with asyncio.timeout(cfg.request_timeout_s):
                check_key(request)
                raw = await read_body(request)
                reading = False
                tei = bool(is_tei and is_tei(raw))
                body, results = await handle(raw, tei)
        except RequestError as exc:
            return fail(exc.status, exc.message, exc.kind, {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
        except Overloaded as exc:
            return fail(503, f"server overloaded: {exc}; retry later", "overloaded_error", {"Retry-After": "1"})
        except TimeoutError:
            if reading:
                return fail(408, f"the request body did not arrive within request_timeout_s="
                                 f"{cfg.request_timeout_s}", "timeout_error")
            return fail(503, f"no answer within request_timeout_s={cfg.request_timeout_s} (the server is busy); "
                             "retry later", "timeout_error", {"Retry-After": "1"})
        except InputError as exc:
            return fail(413 if tei else 400, str(exc))
        except RerankkitError as exc:  # the backend or the server's setup, not the request
            log.error("rerank failed: %s", exc)
            return fail(424 if tei else 500, f"the reranker failed: {exc}", "server_error")
        except Exception:
            log.exception("rerank failed")
            return fail(500, "internal error while reranking (see the server log)", "server_error")
        finally:
            admission.leave()
        n_in, n_out = token_usage([r.ranking for r in results])
        headers = {"x-compute-tokens": str(n_in + n_out),
                   "x-queue-time": str(round(max(r.queue_s for r in results) * 1e3, 2)),
                   "x-inference-time": str(round(max(r.compute_s for r in results) * 1e3, 2))}
        return JSONResponse(body, headers=headers)

    rerank_doc = rerank_operation(cfg)

    @app.post("/v1/rerank", openapi_extra=rerank_doc)
    async def rerank_v1(request: Request) -> JSONResponse:
        return await answer(request, handlers.rerank("1"))

    @app.post("/v2/rerank", openapi_extra=rerank_doc)
    async def rerank_v2(request: Request) -> JSONResponse:
        return await answer(request, handlers.rerank("2"))

    @app.post("/rerank", openapi_extra=rerank_doc)
    async def rerank_plain(request: Request) -> JSONResponse:
        return await answer(request, handlers.rerank("1"), is_tei)  # TEI's shape has "texts", not "documents"

    @app.post("/score")
    async def score(request: Request) -> JSONResponse:
        return await answer(request, handlers.score)

    @app.post("/v1/score")
    async def score_v1(request: Request) -> JSONResponse:
        return await answer(request, handlers.score)

    @app.get("/health", openapi_extra=plain_operation(cfg, HEALTH_SCHEMA, {200: "serving",
                                                                           503: "shutting down"}))
    async def health() -> JSONResponse:
        status = "ok" if batcher.accepting else "shutting down"
        body = {"status": status, "model": cfg.model_name, "requests_in_progress": admission.count,
                "queued_requests": batcher.queued,
                "running_requests": batcher.running, "batches": batcher.batches, "completed": batcher.completed}
        return JSONResponse(body, status_code=200 if batcher.accepting else 503)

    @app.get("/v1/models", openapi_extra=plain_operation(cfg, MODELS_SCHEMA, {200: "the served model"}, keyed=True))
    async def models(request: Request) -> JSONResponse:
        try:
            check_key(request)
        except RequestError as exc:
            return refuse(exc.status, exc.message, exc.kind, {"WWW-Authenticate": "Bearer"})
        spec = reranker.spec
        card = {"id": cfg.model_name, "object": "model", "created": started, "owned_by": "rerankkit",
                "strategy": spec.strategy, "template": spec.template, "backend": spec.backend, "model": spec.model}
        return JSONResponse({"object": "list", "data": [card]})

    return app


class Admission:
    """How many rerank requests are in progress (body being read, queued or running), up to ``limit``.

    Only the event loop touches it, so no lock is needed.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1
