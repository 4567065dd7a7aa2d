"""The common rerank API (Cohere v1/v2, Jina, vLLM): request validation and response shape.

Request: ``{model, query, documents: [str | {"text": str, ...}], top_n, return_documents,
max_tokens_per_doc, max_chunks_per_doc}``.
Response: ``{id, model, results: [{index, relevance_score, document?}], usage, meta}``, best first;
``usage`` is ``{prompt_tokens, total_tokens}`` (vLLM's and Jina's field names), ``meta.tokens`` and
``meta.billed_units`` are Cohere's. TEI's ``/rerank`` and vLLM's ``/score`` are in :mod:`.shapes`.
Pure Python: no web framework here, so it is easy to test and reuse.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..text import lone_surrogates
from ..types import Doc, Query, Ranking
from .config import ServerConfig

#: request fields we read; other Cohere fields are accepted and reported as ignored in meta.warnings
_FIELDS = {"model", "query", "documents", "top_n", "return_documents", "max_tokens_per_doc", "max_chunks_per_doc"}
_IGNORED = {"rank_fields", "priority", "relevant_spans", "truncation", "raw_scores", "return_text"}


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass
class RerankJob:
    """A validated request."""

    query: Query
    docs: list[Doc]
    originals: list[Any]
    top_n: int | None
    return_documents: bool
    model: str | None
    warnings: list[str] = field(default_factory=list)
    max_tokens_per_doc: int | None = None  # Cohere v2: cut each document to this many tokens
    max_chunks_per_doc: int | None = None  # Cohere v1: score up to this many chunks per document


def parse_request(body: bytes, config: ServerConfig) -> RerankJob:
    """Validate a request body; raises :class:`RequestError` (400 or 413) naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON or encoding, huge integers, deep nesting
        raise RequestError(400, f"malformed JSON in the request body: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"the request body must be a JSON object, not {type(data).__name__}")
    query = data.get("query")
    if query is None:
        raise RequestError(400, "missing field 'query' (a non-empty string)")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "field 'query' must be a non-empty string")
    if len(query) > config.max_query_chars:
        raise RequestError(413, f"the query has {len(query)} characters; the limit is "
                                f"max_query_chars={config.max_query_chars}")
    docs_in = data.get("documents")
    if docs_in is None:
        raise RequestError(400, "missing field 'documents' (a non-empty list of strings or {\"text\": ...} objects)")
    if not isinstance(docs_in, list):
        raise RequestError(400, "field 'documents' must be a list of strings or {\"text\": ...} objects")
    if not docs_in:
        raise RequestError(400, "field 'documents' must not be empty")
    if len(docs_in) > config.max_documents:
        raise RequestError(413, f"{len(docs_in)} documents in one request; the limit is "
                                f"max_documents={config.max_documents}")
    docs = [Doc(str(i), _doc_text(d, i, config)) for i, d in enumerate(docs_in)]
    top_n = data.get("top_n")
    if isinstance(top_n, float) and top_n.is_integer():  # JSON's 3.0 is the integer 3 (as in JSON Schema)
        top_n = int(top_n)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise RequestError(400, f"field 'top_n' must be a positive integer, not {_show(top_n)}")
    ret = data.get("return_documents", False)
    if ret is None:
        ret = False
    if not isinstance(ret, bool):
        raise RequestError(400, f"field 'return_documents' must be true or false, not {_show(ret)}")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "field 'model' must be a string")
    warnings = [f"field {k!r} is not supported by this server and was ignored"
                for k in sorted(set(data) - _FIELDS) if data[k] is not None and k in _IGNORED]
    warnings += [f"unknown field {_show(k)} was ignored" for k in sorted(set(data) - _FIELDS - _IGNORED)]
    warnings += _surrogate_warnings(query, docs)
    return RerankJob(Query("q", query), docs, docs_in, top_n, ret, model, warnings,
                     positive_int(data, "max_tokens_per_doc"), positive_int(data, "max_chunks_per_doc"))


def positive_int(data: dict[str, Any], name: str) -> int | None:
    """``data[name]`` as a positive integer (None when absent); 400 otherwise."""
    v = data.get(name)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise RequestError(400, f"field {name!r} must be a positive integer, not {_show(v)}")
    return v


def _doc_text(d: Any, i: int, config: ServerConfig) -> str:
    text = d.get("text") if isinstance(d, dict) else d
    if not isinstance(text, str):
        raise RequestError(400, f"documents[{i}] must be a string or an object with a string 'text' field")
    if len(text) > config.max_document_chars:
        raise RequestError(413, f"documents[{i}] has {len(text)} characters; the limit is "
                                f"max_document_chars={config.max_document_chars}")
    return text


def _surrogate_warnings(query: str, docs: list[Doc], shown: int = 5) -> list[str]:
    """Name the texts whose lone surrogates the reranker replaces by U+FFFD (see :mod:`rerankkit.text`)."""
    where = [(w, n) for w, n in [("query", lone_surrogates(query))]
             + [(f"documents[{i}]", lone_surrogates(d.text)) for i, d in enumerate(docs)] if n]
    if not where:
        return []
    total = sum(n for _, n in where)
    names = ", ".join(w for w, _ in where[:shown]) + (f" and {len(where) - shown} more" if len(where) > shown else "")
    return [f"{total} lone UTF-16 surrogate(s) (not valid Unicode) replaced by U+FFFD before ranking, in {names}"]


def _show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a client's value can be megabytes)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def dump_json(content: Any) -> bytes:
    """UTF-8 JSON; text that has no UTF-8 encoding (lone surrogates echoed back) is \\u-escaped instead."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def relevance_scores(ranking: Ranking, scale: str, score_scale: str = "logit") -> list[float]:
    """Scores along the ranking as JSON-safe floats: probabilities (``scale="sigmoid"``) or logits (``"raw"``).

    ``score_scale`` says what the reranker's scores are: logits (pointwise log-odds, raw cross-encoder
    logits; the sigmoid gives the probability) or already probabilities (a cross-encoder with a sigmoid
    activation; the raw score is then its logit, log p - log(1 - p))."""
    raw = ranking.eval_scores()  # finite and strictly decreasing
    if score_scale == "probability":
        return raw if scale != "raw" else [_logit(p) for p in raw]
    if scale == "raw":
        return raw
    return [_sigmoid(s) for s in raw]


def _logit(p: float) -> float:
    p = min(max(p, 1e-300), math.nextafter(1.0, 0.0))
    return math.log(p) - math.log1p(-p)


def token_usage(rankings: Sequence[Ranking]) -> tuple[int, int]:
    """(input tokens, output tokens) the rankings' model calls read and wrote."""
    return (sum(int(r.metadata.get("prompt_tokens", 0)) for r in rankings),
            sum(int(r.metadata.get("generated_tokens", 0)) for r in rankings))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def build_response(job: RerankJob, ranking: Ranking, config: ServerConfig, api_version: str,
                   extra_meta: dict[str, Any] | None = None, score_scale: str = "logit") -> dict[str, Any]:
    """The response body for ``job`` from its ``ranking`` (best first, cut to ``top_n``)."""
    scores = relevance_scores(ranking, config.score, score_scale)
    results = []
    for sd, score in list(zip(ranking.docs, scores))[: job.top_n]:
        i = int(sd.doc.docid)
        item: dict[str, Any] = {"index": i, "relevance_score": score}
        if job.return_documents:
            orig = job.originals[i]
            item["document"] = dict(orig) if isinstance(orig, dict) else {"text": orig}
        results.append(item)
    n_in, n_out = token_usage([ranking])
    meta: dict[str, Any] = {"api_version": {"version": api_version}, "billed_units": {"search_units": 1},
                            "tokens": {"input_tokens": n_in, "output_tokens": n_out}}
    if job.warnings:
        meta["warnings"] = job.warnings
    if extra_meta:
        meta.update(extra_meta)
    return {"id": str(uuid.uuid4()), "model": config.model_name, "results": results,
            "usage": {"prompt_tokens": n_in, "total_tokens": n_in + n_out}, "meta": meta}


def error_body(status: int, message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """The error body every refusal uses (``message`` as Cohere, plus a type and the status)."""
    return {"message": message, "type": kind, "code": status}
