"""More request shapes: TEI's ``/rerank`` and vLLM's ``/score``, and per-request document policies.

- TEI (text-embeddings-inference, OpenAPI 1.7): ``{query, texts: [str], raw_scores=false,
  return_text=false, truncate=false|null, truncation_direction="Right"|"Left"}`` -> a JSON *list* of
  ``{index, score, text?}`` sorted by score, best first; errors ``{error, error_type}``. ``raw_scores``
  gives logits, else probabilities (the sigmoid). ``truncate=false`` refuses (413) a text the reranker
  cannot read whole; ``null`` (absent) cuts it, as rerankkit always does; ``Left`` keeps a cut text's end.
- vLLM's score API (also ``/v1/score``): ``text_1``/``text_2`` (or ``data_1``/``data_2``, or
  ``queries``/``documents``): one query against N texts (1:N) or N queries against N texts pairwise
  (N:N) -> ``{id, object: "list", created, model, data: [{index, object: "score", score}], usage}``,
  one score per pair in input order.

Pure Python, like :mod:`.protocol`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..strategies.chunking import DocPolicy
from ..types import Doc, Query, Ranking
from .config import ServerConfig
from .protocol import RequestError, relevance_scores, token_usage


def request_policy(strategy: Any, max_tokens_per_doc: int | None = None, max_chunks_per_doc: int | None = None,
                   keep: str = "head", on_overflow: str = "truncate",
                   warnings: list[str] | None = None) -> DocPolicy | None:
    """The :class:`DocPolicy` a request asks for, on top of the reranker's own (None: nothing asked).

    ``max_chunks_per_doc`` turns chunking on (max over chunks, unless the reranker aggregates otherwise)
    for rerankers that score documents one by one; for others it is ignored with a warning.
    """
    default = DocPolicy.from_params(strategy.params)
    changes: dict[str, Any] = {}
    if max_tokens_per_doc is not None:
        changes["max_doc_tokens"] = max_tokens_per_doc
    if max_chunks_per_doc is not None:
        if strategy.pointwise_like:
            changes["max_chunks"] = max_chunks_per_doc
            changes["aggregate"] = default.aggregate if default.aggregate != "none" else "max"
        elif warnings is not None:
            warnings.append(f"field 'max_chunks_per_doc' was ignored: strategy {strategy.name!r} does not score "
                            "documents one by one, so it cannot score them in chunks")
    if keep != "head":
        changes["keep"] = keep
    if on_overflow != "truncate":
        changes["on_overflow"] = on_overflow
    return DocPolicy(**changes).check() if changes else None


def load_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"malformed JSON in the request body: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def _text(value: Any, what: str, limit: int, limit_name: str) -> str:
    if not isinstance(value, str):
        raise RequestError(400, f"{what} must be a string")
    if len(value) > limit:
        raise RequestError(413, f"{what} has {len(value)} characters; the limit is {limit_name}={limit}")
    return value


def _flag(data: dict[str, Any], name: str, default: bool | None) -> bool | None:
    v = data.get(name, default)
    if v is not None and not isinstance(v, bool):
        raise RequestError(400, f"field {name!r} must be true or false, not {v!r}")
    return v


# -- TEI -------------------------------------------------------------------------------------------------
@dataclass
class TeiJob:
    query: Query
    docs: list[Doc]
    raw_scores: bool
    return_text: bool
    keep: str
    on_overflow: str


def parse_tei(body: bytes, config: ServerConfig) -> TeiJob:
    """Validate a TEI ``/rerank`` body."""
    data = load_object(body)
    if "query" not in data:
        raise RequestError(422, "missing field `query`")
    query = _text(data["query"], "field 'query'", config.max_query_chars, "max_query_chars")
    texts = data.get("texts")
    if not isinstance(texts, list):
        raise RequestError(422, "field `texts` must be a list of strings")
    if not texts:
        raise RequestError(422, "`texts` cannot be empty")
    if len(texts) > config.max_documents:
        raise RequestError(413, f"batch size {len(texts)} > maximum allowed batch size {config.max_documents} "
                                "(max_documents)")
    docs = [Doc(str(i), _text(t, f"texts[{i}]", config.max_document_chars, "max_document_chars"))
            for i, t in enumerate(texts)]
    direction = data.get("truncation_direction", "Right")
    if not isinstance(direction, str) or direction.lower() not in ("left", "right"):
        raise RequestError(422, f"field `truncation_direction` must be \"Left\" or \"Right\", not {direction!r}")
    truncate = _flag(data, "truncate", None)
    return TeiJob(Query("q", query), docs, bool(_flag(data, "raw_scores", False)),
                  bool(_flag(data, "return_text", False)), "tail" if direction.lower() == "left" else "head",
                  "error" if truncate is False else "truncate")


def tei_response(job: TeiJob, ranking: Ranking, score_scale: str) -> list[dict[str, Any]]:
    """TEI's ``RerankResponse``: ranks sorted by score, best first."""
    scores = relevance_scores(ranking, "raw" if job.raw_scores else "sigmoid", score_scale)
    out = []
    for sd, score in zip(ranking.docs, scores):
        item: dict[str, Any] = {"index": int(sd.doc.docid), "score": score}
        if job.return_text:
            item["text"] = job.docs[int(sd.doc.docid)].text
        out.append(item)
    return out


def tei_error(status: int, message: str) -> dict[str, Any]:
    """TEI's ``ErrorResponse``."""
    kind = {429: "overloaded", 503: "unhealthy", 424: "backend", 500: "backend"}.get(status, "validation")
    if status == 422 and "token" in message.lower():
        kind = "tokenizer"
    return {"error": message, "error_type": kind}


# -- vLLM's /score ---------------------------------------------------------------------------------------
@dataclass
class ScoreJob:
    pairs: list[tuple[str, str]]
    model: str | None
    # one (query, [pair positions]) per distinct query, in order of first appearance
    groups: list[tuple[str, list[int]]] = field(default_factory=list)


_SCORE_KEYS = (("text_1", "text_2"), ("data_1", "data_2"), ("queries", "documents"))


def parse_score(body: bytes, config: ServerConfig, pointwise_like: bool) -> ScoreJob:
    """Validate a vLLM score body (``text_1``/``text_2``, ``data_1``/``data_2`` or ``queries``/``documents``)."""
    data = load_object(body)
    keys = next((k for k in _SCORE_KEYS if k[0] in data or k[1] in data), None)
    if keys is None:
        raise RequestError(400, "missing fields 'text_1' and 'text_2' (or 'queries' and 'documents')")
    left, right = (_as_list(data.get(k), k) for k in keys)
    if len(left) == 1:
        left = left * len(right)
    elif len(left) != len(right):
        raise RequestError(400, f"'{keys[0]}' has {len(left)} texts and '{keys[1]}' {len(right)}: give one "
                                f"'{keys[0]}' (1:N) or as many as '{keys[1]}' (N:N)")
    if len(right) > config.max_documents:
        raise RequestError(413, f"{len(right)} pairs in one request; the limit is max_documents={config.max_documents}")
    pairs = [(_text(q, f"{keys[0]}[{i}]", config.max_query_chars, "max_query_chars"),
              _text(d, f"{keys[1]}[{i}]", config.max_document_chars, "max_document_chars"))
             for i, (q, d) in enumerate(zip(left, right))]
    groups: dict[str, list[int]] = {}
    for i, (q, _) in enumerate(pairs):
        groups.setdefault(q, []).append(i)
    if len(groups) > 1 and not pointwise_like:
        raise RequestError(400, "this reranker ranks documents against each other, so it scores one query against "
                                "many texts (1:N), not N different queries")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "field 'model' must be a string")
    return ScoreJob(pairs, model, list(groups.items()))


def _as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        raise RequestError(400, f"missing field {name!r}")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise RequestError(400, f"field {name!r} must not be empty")
    if not all(isinstance(x, str) for x in items):
        raise RequestError(400, f"field {name!r} must be a string or a list of strings")
    return items


def score_items(job: ScoreJob) -> list[tuple[Query, list[Doc]]]:
    """One (query, documents) item per distinct query; document ids are the pair positions."""
    return [(Query(f"q{k}", q), [Doc(str(i), job.pairs[i][1]) for i in idx]) for k, (q, idx) in enumerate(job.groups)]


def score_response(job: ScoreJob, rankings: list[Ranking], config: ServerConfig, score_scale: str) -> dict[str, Any]:
    """vLLM's ``ScoreResponse``: one score per pair, in input order."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for sd, s in zip(ranking.docs, relevance_scores(ranking, config.score, score_scale)):
            scores[int(sd.doc.docid)] = s
    n_in, n_out = token_usage(rankings)
    return {"id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
            "model": config.model_name,
            "data": [{"index": i, "object": "score", "score": scores[i]} for i in range(len(job.pairs))],
            "usage": {"prompt_tokens": n_in, "total_tokens": n_in + n_out, "completion_tokens": n_out}}
