"""The rerank server over the oracle backend: the official cohere client, bad input, health, models, CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.fake import OracleBackend  # noqa: E402
from rerankkit.server import ServerConfig, ServerThread, create_app  # noqa: E402

KEY = "test-key-123"
DOCS = ["bm25 ranks documents by term statistics", "cats sleep a lot", "ranking functions score documents",
        "the weather is nice", "bm25 is a bag-of-words retrieval function"]
REL = {DOCS[0]: 3, DOCS[1]: 0, DOCS[2]: 2, DOCS[3]: 1, DOCS[4]: 3.5}
IDEAL = sorted(range(len(DOCS)), key=lambda i: -REL[DOCS[i]])  # [4, 0, 2, 3, 1]
LIMITS = dict(max_documents=8, max_document_chars=300, max_query_chars=100, max_body_bytes=4096)


@pytest.fixture(scope="module")
def reranker():
    return Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL))


@pytest.fixture(scope="module")
def server(reranker):
    app = create_app(reranker, ServerConfig(model_name="oracle-reranker", api_key=KEY, **LIMITS))
    with ServerThread(app) as s:
        yield s


def post(server, body, key=KEY, path="/v1/rerank", **kw):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, (bytes, str)):
        return httpx.post(server.url + path, content=body, headers={**headers, "content-type": "application/json"},
                          **kw)
    return httpx.post(server.url + path, json=body, headers=headers, **kw)


def test_cohere_v2_client_gets_the_reranked_order(server, reranker):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key=KEY, base_url=server.url)
    res = co.rerank(model="oracle-reranker", query="what is bm25", documents=DOCS, top_n=3)
    assert [r.index for r in res.results] == IDEAL[:3]
    # relevance_score is the sigmoid of the reranker's own score, in (0, 1) and non-increasing
    direct = reranker.rerank("what is bm25", DOCS)
    expect = [1 / (1 + math.exp(-sd.score)) for sd in direct.docs[:3]]
    assert [r.relevance_score for r in res.results] == pytest.approx(expect, abs=1e-9)
    assert all(0 < r.relevance_score < 1 for r in res.results)
    assert res.meta.api_version.version == "2" and res.id


def test_cohere_v1_client_with_objects_and_return_documents(server):
    cohere = pytest.importorskip("cohere")
    co = cohere.Client(api_key=KEY, base_url=server.url)
    docs = [{"text": d, "source": f"s{i}"} for i, d in enumerate(DOCS)]
    res = co.rerank(model="oracle-reranker", query="what is bm25", documents=docs, return_documents=True)
    assert [r.index for r in res.results] == IDEAL
    assert [r.document.text for r in res.results] == [DOCS[i] for i in IDEAL]
    scores = [r.relevance_score for r in res.results]
    assert scores == sorted(scores, reverse=True)
    plain = co.rerank(model="oracle-reranker", query="what is bm25", documents=DOCS, top_n=2)
    assert [r.index for r in plain.results] == IDEAL[:2] and plain.results[0].document is None


def test_cohere_client_with_a_wrong_key_is_refused(server):
    cohere = pytest.importorskip("cohere")
    from cohere.errors import UnauthorizedError

    with pytest.raises(UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(model="m", query="q", documents=["d"])


def test_raw_json_request_and_ignored_fields_are_reported(server):
    r = post(server, {"query": "what is bm25", "documents": DOCS, "top_n": 10, "rank_fields": ["text"],
                      "return_documents": True}, path="/v2/rerank")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["index"] for x in body["results"]] == IDEAL  # top_n above the count returns everything
    assert body["results"][0]["document"] == {"text": DOCS[IDEAL[0]]}
    assert any("rank_fields" in w for w in body["meta"]["warnings"])
    assert body["model"] == "oracle-reranker"


def test_empty_string_documents_are_ranked_not_dropped(server):
    r = post(server, {"query": "what is bm25", "documents": [DOCS[0], "", "   "]})
    assert r.status_code == 200, r.text
    assert sorted(x["index"] for x in r.json()["results"]) == [0, 1, 2]


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    ({"documents": DOCS}, 400, "missing field 'query'"),
    ({"query": "  ", "documents": DOCS}, 400, "'query' must be a non-empty string"),
    ({"query": 3, "documents": DOCS}, 400, "'query' must be a non-empty string"),
    ({"query": "q"}, 400, "missing field 'documents'"),
    ({"query": "q", "documents": []}, 400, "'documents' must not be empty"),
    ({"query": "q", "documents": "just one"}, 400, "'documents' must be a list"),
    ({"query": "q", "documents": ["a", 7]}, 400, "documents[1] must be a string"),
    ({"query": "q", "documents": [{"title": "no text"}]}, 400, "documents[0] must be a string"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 400, "'top_n' must be a positive integer"),
    ({"query": "q", "documents": ["a"], "return_documents": "yes"}, 400, "'return_documents'"),
    ({"query": "q", "documents": ["d"] * 9}, 413, "max_documents=8"),
    ({"query": "q", "documents": ["a", "x" * 301]}, 413, "documents[1] has 301 characters; the limit is "
                                                     "max_document_chars=300"),
    ({"query": "q" * 101, "documents": ["a"]}, 413, "max_query_chars=100"),
    ({"query": "q", "documents": ["x" * 250] * 8, "pad": "y" * 3000}, 413, "max_body_bytes=4096"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gets_a_4xx_naming_the_problem(server, body, status, message):
    r = post(server, body)
    assert r.status_code == status, r.text
    assert message in r.json()["message"]
    assert r.json()["code"] == status


def test_chunked_body_over_the_limit_is_refused(server):
    def chunks():
        yield b'{"query": "q", "documents": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    r = httpx.post(server.url + "/v1/rerank", content=chunks(), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 413 and "max_body_bytes=4096" in r.json()["message"]


def test_api_key_is_required_and_checked(server):
    body = {"query": "q", "documents": ["a"]}
    r = post(server, body, key=None)
    assert r.status_code == 401 and "missing API key" in r.json()["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = post(server, body, key="wrong")
    assert r.status_code == 401 and r.json()["message"] == "invalid API key"
    r = httpx.post(server.url + "/v1/rerank", json=body, headers={"Authorization": KEY})  # no scheme
    assert r.status_code == 401
    assert httpx.get(server.url + "/v1/models").status_code == 401


def test_wrong_routes_and_methods(server):
    assert httpx.get(server.url + "/v1/rerank").status_code == 405
    r = httpx.get(server.url + "/v3/rerank")
    assert r.status_code == 404 and "/v3/rerank" in r.json()["message"]


def test_server_keeps_serving_after_bad_input(server):
    for body, _, _ in BAD:
        post(server, body)
    r = post(server, {"query": "what is bm25", "documents": DOCS})
    assert r.status_code == 200 and [x["index"] for x in r.json()["results"]] == IDEAL
    assert httpx.get(server.url + "/health").json()["status"] == "ok"


def test_health_and_models(server):
    h = httpx.get(server.url + "/health")  # no key needed for health checks
    assert h.status_code == 200 and h.json()["model"] == "oracle-reranker"
    m = httpx.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert m["object"] == "list" and m["data"][0]["id"] == "oracle-reranker"
    assert m["data"][0]["strategy"] == "pointwise"


def test_raw_scores_option(reranker):
    app = create_app(reranker, ServerConfig(score="raw"))
    with ServerThread(app) as s:
        r = httpx.post(s.url + "/v1/rerank", json={"query": "what is bm25", "documents": DOCS})
    direct = reranker.rerank("what is bm25", DOCS)
    assert [x["relevance_score"] for x in r.json()["results"]] == pytest.approx([d.score for d in direct.docs])


def test_cli_serve_refuses_an_unset_api_key_variable():
    env_var = "RERANKKIT_TEST_SURELY_UNSET_KEY"
    env = {k: v for k, v in os.environ.items() if k != env_var}
    p = subprocess.run([sys.executable, "-m", "rerankkit.cli.main", "serve", "pointwise-yes-no", "--api-key-env",
                        env_var], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 2 and env_var in p.stderr


def test_server_without_fastapi_names_the_extra(monkeypatch, reranker):
    from rerankkit import MissingExtraError

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtraError, match=r"rerankkit\[server\]"):
        create_app(reranker)
