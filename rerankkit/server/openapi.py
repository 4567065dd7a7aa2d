"""The OpenAPI description of the rerank routes: request body, every status they answer, and body shapes.

The routes read their bodies themselves (:mod:`.protocol`), so FastAPI cannot infer these; they are
attached to the routes with ``openapi_extra`` and serve ``/openapi.json``, which clients and the
schema-driven fuzzer (``schemathesis``, ``eval/fuzz_server.py``) read. Limits come from the
:class:`ServerConfig`, so a request the schema allows is one the server accepts (except for
``max_body_bytes``, which JSON Schema cannot say).
"""

from __future__ import annotations

from typing import Any

from .config import ServerConfig

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "type", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"}},
}

_ERRORS = {
    400: "malformed JSON or an invalid field (the message names it)",
    401: "missing or wrong API key (only when the server has one)",
    408: "the request body did not arrive within request_timeout_s",
    413: "a limit was exceeded: max_body_bytes, max_documents, max_document_chars or max_query_chars",
    503: "overloaded (full queue), past request_timeout_s, or shutting down; retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int | str, Any]:
    """OpenAPI ``responses`` entries for refusals with the shared error body."""
    out: dict[int | str, Any] = {}
    for s in statuses:
        entry: dict[str, Any] = {"description": _ERRORS[s],
                                 "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        if s == 503:
            entry["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
        out[s] = entry
    return out


def query_schema(cfg: ServerConfig) -> dict[str, Any]:
    """A query field: a string with a non-whitespace character, at most ``max_query_chars`` long."""
    return {"type": "string", "minLength": 1, "maxLength": cfg.max_query_chars, "pattern": r"\S",
            "description": "the query; must hold a non-whitespace character"}


def rerank_request_schema(cfg: ServerConfig) -> dict[str, Any]:
    """JSON Schema of a rerank request (Cohere v1/v2, Jina, vLLM shape) under ``cfg``'s limits."""
    text = {"type": "string", "maxLength": cfg.max_document_chars}
    return {
        "type": "object",
        "required": ["query", "documents"],
        "properties": {
            "model": {"type": ["string", "null"], "description": "ignored: the server serves one model"},
            "query": query_schema(cfg),
            "documents": {
                "type": "array", "minItems": 1, "maxItems": cfg.max_documents,
                "items": {"anyOf": [text, {"type": "object", "required": ["text"], "properties": {"text": text}}]},
                "description": "strings, or objects with a 'text' field (other fields are echoed back)",
            },
            "top_n": {"type": ["integer", "null"], "minimum": 1, "description": "how many results (default: all)"},
            "return_documents": {"type": ["boolean", "null"], "description": "echo each document in its result"},
            "max_tokens_per_doc": {"type": ["integer", "null"], "minimum": 1,
                                   "description": "cut each document to this many tokens (or chunk it)"},
            "max_chunks_per_doc": {"type": ["integer", "null"], "minimum": 1,
                                   "description": "score a long document by at most this many windows"},
        },
    }


def score_request_schema(cfg: ServerConfig) -> dict[str, Any]:
    """JSON Schema of a vLLM score request, one text against many (1:N).

    The server also reads N:N pairs (``text_1`` a list as long as ``text_2``, for pointwise rerankers) and
    the ``data_1``/``data_2`` and ``queries``/``documents`` spellings; JSON Schema cannot say "as long as",
    so the schema describes the 1:N form every reranker serves."""
    doc = {"type": "string", "maxLength": cfg.max_document_chars}
    return {
        "type": "object",
        "required": ["text_1", "text_2"],
        "properties": {
            "model": {"type": ["string", "null"], "description": "ignored: the server serves one model"},
            "text_1": query_schema(cfg),
            "text_2": {"anyOf": [doc, {"type": "array", "minItems": 1, "maxItems": cfg.max_documents, "items": doc}],
                       "description": "the texts to score against text_1"},
        },
    }


def score_response_schema() -> dict[str, Any]:
    item = {"type": "object", "required": ["index", "object", "score"],
            "properties": {"index": {"type": "integer", "minimum": 0}, "object": {"type": "string"},
                           "score": {"type": "number"}}}
    return {"type": "object", "required": ["id", "object", "model", "data", "usage"],
            "properties": {"id": {"type": "string"}, "object": {"type": "string"}, "model": {"type": "string"},
                           "data": {"type": "array", "items": item}, "usage": {"type": "object"}}}


def rerank_response_schema() -> dict[str, Any]:
    result = {
        "type": "object",
        "required": ["index", "relevance_score"],
        "properties": {"index": {"type": "integer", "minimum": 0}, "relevance_score": {"type": "number"},
                       "document": {"type": "object"}},
    }
    return {
        "type": "object",
        "required": ["id", "model", "results", "meta"],
        "properties": {"id": {"type": "string"}, "model": {"type": "string"},
                       "results": {"type": "array", "items": result}, "meta": {"type": "object"}},
    }


def post_operation(cfg: ServerConfig, request: dict[str, Any], answer: dict[str, Any], what: str) -> dict[str, Any]:
    """``openapi_extra`` for a POST route: its JSON body, its answer (``what``) and every refusal it can give."""
    responses: dict[int | str, Any] = {
        200: {"description": what, "content": {"application/json": {"schema": answer}}},
        **error_responses(400, 408, 413, 503),
    }
    if cfg.api_key is not None:
        responses.update(error_responses(401))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": responses}


def rerank_operation(cfg: ServerConfig) -> dict[str, Any]:
    """``openapi_extra`` for a rerank route."""
    return post_operation(cfg, rerank_request_schema(cfg), rerank_response_schema(),
                          "the documents ranked best first (cut to top_n)")


def score_operation(cfg: ServerConfig) -> dict[str, Any]:
    """``openapi_extra`` for a score route (vLLM's ``/score``)."""
    return post_operation(cfg, score_request_schema(cfg), score_response_schema(), "one score per pair, in input order")


def plain_operation(cfg: ServerConfig, body: dict[str, Any], statuses: dict[int, str],
                    keyed: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a GET route answering ``body`` with each of ``statuses`` (and 401 if ``keyed``)."""
    responses: dict[int | str, Any] = {
        s: {"description": d, "content": {"application/json": {"schema": body}}} for s, d in statuses.items()}
    if keyed and cfg.api_key is not None:
        responses.update(error_responses(401))
    return {"responses": responses}


HEALTH_SCHEMA: dict[str, Any] = {"type": "object", "required": ["status", "model"],
                                 "properties": {"status": {"type": "string"}, "model": {"type": "string"}}}
MODELS_SCHEMA: dict[str, Any] = {"type": "object", "required": ["object", "data"],
                                 "properties": {"object": {"type": "string"}, "data": {"type": "array"}}}
