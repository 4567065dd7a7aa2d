"""Hostile requests the schema fuzzer cannot write, and the server's limits: per-request time, admitted requests.

Over the oracle backend (no model): lone surrogates are ranked with U+FFFD and named in
``meta.warnings``; client values that cannot be encoded or nest too deep get a 400, not a 500; a
request past ``request_timeout_s`` gets 503 (408 while its body is still arriving) and leaves the
queue; more admitted requests than ``max_queue_requests + max_batch_requests`` get 503 + Retry-After.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.fake import OracleBackend  # noqa: E402
from rerankkit.errors import BackendError, ConfigError  # noqa: E402
from rerankkit.server import ServerConfig, ServerThread, create_app  # noqa: E402

DOCS = ["bm25 ranks documents by term statistics", "cats sleep a lot", "ranking functions score documents"]
REL = {DOCS[0]: 3, DOCS[1]: 0, DOCS[2]: 2}


class Gated(OracleBackend):
    """The oracle, but every model call waits for ``gate`` (and can be told to fail)."""

    def __init__(self, relevance, fail: Exception | None = None):
        super().__init__(relevance)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = fail

    def score(self, requests):
        self.entered.set()
        assert self.gate.wait(20), "test gate never opened"
        if self.fail is not None:
            raise self.fail
        return super().score(requests)


def serve(backend=None, **cfg):
    backend = backend or OracleBackend(REL)
    app = create_app(Reranker("pointwise-yes-no", backend_instance=backend), ServerConfig(**cfg))
    return ServerThread(app).start(), app


def raw(url: str, body: str) -> httpx.Response:
    return httpx.post(url + "/v1/rerank", content=body.encode("utf-8"), timeout=30,
                      headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def server():
    s, _ = serve()
    yield s
    s.stop()


def test_lone_surrogates_are_ranked_with_a_warning_and_echoed_back(server):
    body = ('{"query": "what is bm25\\udc00", "documents": ["' + DOCS[0] + '", "cats\\ud800", '
            '{"text": "x\\udfff", "id": "\\ud801"}], "return_documents": true}')
    r = raw(server.url, body)
    assert r.status_code == 200, r.text
    out = r.json()  # the reply is valid JSON: what cannot be UTF-8 is \\u-escaped as the client sent it
    assert sorted(x["index"] for x in out["results"]) == [0, 1, 2]
    assert out["meta"]["rerankkit"]["replaced_chars"] == 3  # the query's and two documents' (not the id field)
    warning = next(w for w in out["meta"]["warnings"] if "surrogate" in w)
    assert "query, documents[1], documents[2]" in warning
    echoed = {x["index"]: x["document"] for x in out["results"]}
    assert echoed[1] == {"text": "cats\ud800"} and echoed[2] == {"text": "x\udfff", "id": "\ud801"}


@pytest.mark.parametrize(("body", "message"), [
    ('{"query": "q", "documents": ["a"], "top_n": "\\ud800"}', "'top_n' must be a positive integer"),
    ('{"query": "q", "documents": ["a"], "\\ud800": 1}', None),  # an unknown field, named in a warning
    ("[" * 100_000 + "]" * 100_000, "malformed JSON"),
    ('{"query": "q", "documents": ["a"], "top_n": 1' + "0" * 5000 + "}", "malformed JSON"),
    ('{"query": "q", "documents": ["a"], "top_n": 1e999}', "'top_n' must be a positive integer"),
    ('{"query": "q", "documents": ["a"], "top_n": ' + "[" * 5000 + "]" * 5000 + "}", "malformed JSON"),
    ('{"query": "q", "documents": [' + ", ".join(['"a"'] * 3) + '], "top_n": 2.0}', None),  # 2.0 is an integer
    ('\ufeff{"query": "q", "documents": ["a"]}', None),  # a UTF-8 BOM is read as such
])
def test_hostile_json_gets_a_4xx_or_an_answer_never_a_500(server, body, message):
    r = raw(server.url, body)
    if message is None:
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["results"], list)
    else:
        assert r.status_code == 400, r.text
        assert message in r.json()["message"] and len(r.json()["message"]) < 400


def test_other_methods_get_405_with_allow_and_a_json_body(server):
    r = httpx.put(server.url + "/v1/rerank")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["code"] == 405


def test_a_request_past_its_time_limit_gets_503_and_leaves_the_queue():
    backend = Gated(REL)
    s, app = serve(backend, request_timeout_s=0.5)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
            assert backend.entered.wait(10)
            waiting = httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
            assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
            assert waiting.json()["type"] == "timeout_error" and "request_timeout_s=0.5" in waiting.json()["message"]
            assert app.state.batcher.queued == 0  # it left the queue: no model call will be made for it
            running = first.result()
            assert running.status_code == 503  # the model call outlived the limit too; its answer is dropped
        backend.gate.set()
        ok = httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
        assert ok.status_code == 200 and [x["index"] for x in ok.json()["results"]] == [0, 2, 1]
    finally:
        backend.gate.set()
        s.stop()


def test_a_body_that_does_not_arrive_in_time_gets_408():
    s, _ = serve(request_timeout_s=0.5)

    def slow():
        yield b'{"query": "q", '
        time.sleep(1.5)
        yield b'"documents": ["a"]}'

    try:
        r = httpx.post(s.url + "/v1/rerank", content=slow(), timeout=30)
        assert r.status_code == 408 and r.json()["type"] == "timeout_error"
        assert httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30).status_code == 200
    finally:
        s.stop()


def test_admitted_requests_are_bounded_even_while_bodies_are_still_arriving():
    s, _ = serve(max_queue_requests=1, max_batch_requests=1)  # at most 2 admitted at once
    releases = [threading.Event(), threading.Event()]

    def trickle(release):
        yield b'{"query": "q", '
        release.wait(20)
        yield b'"documents": ["a"]}'

    try:
        with ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(httpx.post, s.url + "/v1/rerank", content=trickle(e), timeout=30) for e in releases]
            deadline = time.monotonic() + 20
            while httpx.get(s.url + "/health").json()["requests_in_progress"] < 2:
                assert time.monotonic() < deadline, "the two slow requests were never admitted"
                time.sleep(0.02)
            r = httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "max_queue_requests + max_batch_requests = 2" in r.json()["message"]
            for release, f in zip(releases, slow):  # one at a time: a queue of 1 holds them in turn
                release.set()
                assert f.result().status_code == 200
        assert httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30).status_code == 200
    finally:
        for release in releases:
            release.set()
        s.stop()


def test_a_failing_backend_is_a_500_naming_it_not_a_client_error():
    backend = Gated(REL, fail=BackendError("out of memory on the device"))
    backend.gate.set()
    s, _ = serve(backend)
    try:
        r = httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
        assert r.status_code == 500 and "out of memory" in r.json()["message"] and r.json()["type"] == "server_error"
    finally:
        s.stop()


def test_openapi_schema_documents_the_request_and_every_status():
    _, app = None, create_app(Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL)),
                              ServerConfig(max_documents=7, api_key="k"))
    op = app.openapi()["paths"]["/v1/rerank"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["documents"]["maxItems"] == 7 and schema["required"] == ["query", "documents"]
    assert {"200", "400", "401", "408", "413", "503"} <= set(map(str, op["responses"]))
    json.dumps(app.openapi())  # serialisable


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "10"])
def test_request_timeout_setting_is_checked(bad):
    with pytest.raises(ConfigError, match="request_timeout_s"):
        ServerConfig(request_timeout_s=bad)
