"""Micro-batching, the bounded queue, failure isolation and graceful shutdown, with a gated oracle backend.

The gate holds the first model call open so that later requests pile up in the queue: what the
worker then does with them is deterministic.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.fake import OracleBackend  # noqa: E402
from rerankkit.server import ServerConfig, ServerThread, create_app  # noqa: E402

DOCS = ["bm25 ranks documents by term statistics", "cats sleep a lot", "ranking functions score documents"]
REL = {DOCS[0]: 3, DOCS[1]: 0, DOCS[2]: 2, "boom": 1}
IDEAL = [0, 2, 1]


class GatedOracle(OracleBackend):
    """The oracle, but each model call waits for ``gate``; ``calls`` counts the calls (one per batch)."""

    def __init__(self, relevance):
        super().__init__(relevance)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def score(self, requests):
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(20), "test gate never opened"
        if any("boom" in self.render(r.prompt) for r in requests):
            raise RuntimeError("backend failure on 'boom'")
        return super().score(requests)


def start(backend, **cfg):
    app = create_app(Reranker("pointwise-yes-no", backend_instance=backend), ServerConfig(**cfg))
    return ServerThread(app).start(), app


def rerank(url, docs=DOCS):
    return httpx.post(url + "/v1/rerank", json={"query": "what is bm25", "documents": docs}, timeout=30)


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("max_batch", [8, 1])
def test_waiting_requests_share_one_model_call(max_batch):
    backend = GatedOracle(REL)
    server, app = start(backend, max_batch_requests=max_batch)
    try:
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(rerank, server.url)
            assert backend.entered.wait(10)
            rest = [pool.submit(rerank, server.url) for _ in range(5)]
            wait_for(lambda: app.state.batcher.queued == 5)
            backend.gate.set()
            responses = [first.result(), *[f.result() for f in rest]]
        assert all(r.status_code == 200 for r in responses)
        assert all([x["index"] for x in r.json()["results"]] == IDEAL for r in responses)
        sizes = [r.json()["meta"]["rerankkit"]["batch_requests"] for r in responses]
        if max_batch == 8:
            assert sizes == [1, 5, 5, 5, 5, 5] and backend.calls == 2
        else:  # micro-batching off: one model call per request
            assert sizes == [1] * 6 and backend.calls == 6
    finally:
        backend.gate.set()
        server.stop()


def test_full_queue_answers_503_and_recovers():
    backend = GatedOracle(REL)
    server, app = start(backend, max_queue_requests=2)
    try:
        with ThreadPoolExecutor(4) as pool:
            running = pool.submit(rerank, server.url)
            assert backend.entered.wait(10)
            queued = [pool.submit(rerank, server.url) for _ in range(2)]
            wait_for(lambda: app.state.batcher.queued == 2)
            over = rerank(server.url)
            assert over.status_code == 503
            assert "max_queue_requests=2" in over.json()["message"] and over.headers["retry-after"] == "1"
            backend.gate.set()
            assert [f.result().status_code for f in [running, *queued]] == [200, 200, 200]
        assert rerank(server.url).status_code == 200  # serving again once the queue drained
    finally:
        backend.gate.set()
        server.stop()


def test_a_failing_request_does_not_fail_its_batch_mates():
    backend = GatedOracle(REL)
    server, app = start(backend)
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(rerank, server.url)
            assert backend.entered.wait(10)
            good = pool.submit(rerank, server.url)
            bad = pool.submit(rerank, server.url, ["boom", DOCS[0]])
            wait_for(lambda: app.state.batcher.queued == 2)
            backend.gate.set()
            assert first.result().status_code == 200
            assert good.result().status_code == 200 and [x["index"] for x in good.result().json()["results"]] == IDEAL
            assert bad.result().status_code == 500 and "internal error" in bad.result().json()["message"]
        assert rerank(server.url).status_code == 200
    finally:
        backend.gate.set()
        server.stop()


def test_graceful_shutdown_finishes_requests_in_flight():
    backend = GatedOracle(REL)
    server, app = start(backend)
    with ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(rerank, server.url)
        assert backend.entered.wait(10)
        stopping = pool.submit(server.stop)

        def refused() -> bool:
            try:
                httpx.get(server.url + "/health", timeout=1)
            except httpx.TransportError:
                return True
            return False

        wait_for(refused)  # no new connections once shutdown began...
        assert not in_flight.done()
        backend.gate.set()  # ...but the request in flight still gets its answer
        r = in_flight.result(timeout=30)
        stopping.result(timeout=30)
    assert r.status_code == 200 and [x["index"] for x in r.json()["results"]] == IDEAL
    assert not app.state.batcher.accepting
