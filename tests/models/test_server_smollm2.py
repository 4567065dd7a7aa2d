"""`rerankkit serve pointwise-smollm2-135m` as a real process, called with the official cohere client."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
cohere = pytest.importorskip("cohere")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[2]
QUERY = "what is the bm25 ranking function"
DOCS = ["BM25 is a bag-of-words ranking function used by search engines to score documents for a query.",
        "Cats sleep for about fifteen hours a day.",
        "Okapi BM25 weighs term frequency with saturation and normalises for document length.",
        "The recipe needs two eggs and a cup of flour."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cohere_client_against_served_smollm2(smollm2_dir):
    port = _free_port()
    env = {**os.environ, "RK_TEST_KEY": "k-123", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rerankkit.cli.main", "serve", "pointwise-smollm2-135m",
                             "--port", str(port), "--set", "threads=1", "--set", "dtype=fp32", "--api-key-env", "RK_TEST_KEY"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        from rerankkit import Reranker

        # fp32 on both sides: bf16 scores shift with batch composition (micro-batching)
        expected = Reranker("pointwise-smollm2-135m", threads=1, dtype="fp32").rerank(QUERY, DOCS)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)

        co = cohere.ClientV2(api_key="k-123", base_url=url)

        def ask():
            return co.rerank(model="pointwise-smollm2-135m", query=QUERY, documents=DOCS)

        with ThreadPoolExecutor(4) as pool:  # concurrent requests share model calls; answers must not change
            results = list(pool.map(lambda _: ask(), range(4)))
        want_idx = [int(sd.docid) for sd in expected.docs]
        want_scores = [1 / (1 + math.exp(-sd.score)) for sd in expected.docs]
        for res in results:
            assert [r.index for r in res.results] == want_idx
            assert [r.relevance_score for r in res.results] == pytest.approx(want_scores, abs=1e-4)
        assert max(r.meta.rerankkit["batch_requests"] for r in results) >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0
