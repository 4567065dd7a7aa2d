"""The server's other shapes over scripted backends: TEI's /rerank (fields and reply as TEI's OpenAPI
schema defines them), vLLM's /score, Cohere's max_tokens_per_doc / max_chunks_per_doc, token usage."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.fake import ScriptedBackend  # noqa: E402
from rerankkit.server import ServerConfig, ServerThread, create_app  # noqa: E402


def gold_score(text, choices):
    doc = text.split("Passage:", 1)[1].split("\nQuery:", 1)[0]
    v = 0.5 * doc.count("gold") - 0.25 * doc.count("lead")
    return [v if c.strip().lower() == "yes" else -v for c in choices]


def words(n):
    return " ".join(f"w{i}" for i in range(n))


DOCS = ["gold gold lead", "lead lead", "gold", words(80) + " gold gold gold"]  # the last: evidence at its end


@pytest.fixture(scope="module")
def pointwise():
    return Reranker("pointwise-yes-no", backend_instance=ScriptedBackend(score=gold_score), max_doc_tokens=40)


@pytest.fixture(scope="module")
def server(pointwise):
    with ServerThread(create_app(pointwise, ServerConfig(model_name="scripted", max_documents=8))) as s:
        yield s


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_tei_rerank_request_and_reply(server, pointwise):
    direct = pointwise.rerank("q", DOCS)
    r = httpx.post(server.url + "/rerank", json={"query": "q", "texts": DOCS})
    assert r.status_code == 200, r.text
    ranks = r.json()
    assert isinstance(ranks, list) and [x["index"] for x in ranks] == [int(i) for i in direct.docids]
    for x in ranks:  # Rank: index >= 0 (int), score (number), text only when asked
        assert set(x) == {"index", "score"} and isinstance(x["index"], int) and x["index"] >= 0
    assert [x["score"] for x in ranks] == pytest.approx([sig(d.score) for d in direct.docs])
    assert int(r.headers["x-compute-tokens"]) > 0

    full = {"query": "q", "texts": DOCS, "raw_scores": True, "return_text": True, "truncate": True,
            "truncation_direction": "Right"}
    ranks = httpx.post(server.url + "/rerank", json=full).json()
    assert [x["score"] for x in ranks] == pytest.approx([d.score for d in direct.docs])
    assert [x["text"] for x in ranks] == [DOCS[int(i)] for i in direct.docids]


def test_tei_truncation_direction_and_refusal(server):
    left = httpx.post(server.url + "/rerank", json={"query": "q", "texts": DOCS, "truncate": True,
                                                    "truncation_direction": "Left"}).json()
    assert left[0]["index"] == 3  # its end (three golds) is what a left truncation keeps
    r = httpx.post(server.url + "/rerank", json={"query": "q", "texts": DOCS, "truncate": False})
    assert r.status_code == 413
    assert r.json()["error_type"] == "validation" and "reads at most 40" in r.json()["error"]
    ok = httpx.post(server.url + "/rerank", json={"query": "q", "texts": DOCS[:3], "truncate": False})
    assert ok.status_code == 200
    for body, status in (({"query": "q", "texts": "a"}, 422), ({"query": "q", "texts": []}, 422),
                         ({"query": "q", "texts": ["a"] * 9}, 413),
                         ({"query": "q", "texts": ["a"], "truncation_direction": "up"}, 422)):
        r = httpx.post(server.url + "/rerank", json=body)
        assert r.status_code == status and set(r.json()) == {"error", "error_type"}, r.text


def test_vllm_score_one_to_many_and_pairs(server, pointwise):
    direct = {d.docid: d.score for d in pointwise.rerank("q", DOCS[:3]).docs}
    for path in ("/score", "/v1/score"):
        r = httpx.post(server.url + path, json={"model": "scripted", "text_1": "q", "text_2": DOCS[:3]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "list" and body["model"] == "scripted" and body["id"]
        assert [d["index"] for d in body["data"]] == [0, 1, 2] and {d["object"] for d in body["data"]} == {"score"}
        assert [d["score"] for d in body["data"]] == pytest.approx([sig(direct[str(i)]) for i in range(3)])
        assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]
    pairs = httpx.post(server.url + "/score", json={"text_1": ["q", "other q"], "text_2": ["gold", "lead"]}).json()
    assert [d["score"] for d in pairs["data"]] == pytest.approx([sig(1.0), sig(-0.5)])
    same = httpx.post(server.url + "/score", json={"queries": "q", "documents": ["gold"]}).json()
    assert same["data"][0]["score"] == pytest.approx(sig(1.0))
    bad = httpx.post(server.url + "/score", json={"text_1": ["a", "b"], "text_2": ["x", "y", "z"]})
    assert bad.status_code == 400 and "1:N" in bad.json()["message"]


def test_score_pairs_with_different_queries_need_a_pointwise_reranker():
    r = Reranker("listwise-smollm2-135m", backend_instance=ScriptedBackend(generate=lambda t: "[1] > [2]"))
    with ServerThread(create_app(r)) as s:
        bad = httpx.post(s.url + "/score", json={"text_1": ["a", "b"], "text_2": ["x", "y"]})
        ok = httpx.post(s.url + "/score", json={"text_1": "a", "text_2": ["x", "y"]})
    assert bad.status_code == 400 and "1:N" in bad.json()["message"]
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] > 0  # generated tokens counted


def test_cohere_max_tokens_and_max_chunks_per_doc_are_honoured(server):
    cohere = pytest.importorskip("cohere")
    v2 = cohere.ClientV2(api_key="unused", base_url=server.url)
    cut = v2.rerank(model="scripted", query="q", documents=DOCS, max_tokens_per_doc=10)
    assert cut.results[0].index == 0  # the last document lost its golds
    assert cut.meta.tokens.input_tokens > 0 and cut.meta.billed_units.search_units == 1
    raw = httpx.post(server.url + "/v2/rerank", json={"query": "q", "documents": DOCS, "max_tokens_per_doc": 10})
    assert raw.json()["meta"]["rerankkit"]["truncated_docs"] == 1
    assert raw.json()["usage"]["total_tokens"] == raw.json()["meta"]["tokens"]["input_tokens"]

    v1 = cohere.Client(api_key="unused", base_url=server.url)
    chunked = v1.rerank(model="scripted", query="q", documents=DOCS, max_chunks_per_doc=4)
    assert chunked.results[0].index == 3  # scored as chunks, its last chunk holds three golds
    raw = httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": DOCS, "max_chunks_per_doc": 4})
    meta = raw.json()["meta"]["rerankkit"]
    assert meta["chunked_docs"] == 1 and meta["chunks"] == 6 and meta["truncated_docs"] == 0
    bad = httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": DOCS, "max_chunks_per_doc": 0})
    assert bad.status_code == 400 and "max_chunks_per_doc" in bad.json()["message"]


def test_probability_scores_are_not_squashed_twice():
    """A cross-encoder with a sigmoid activation already scores probabilities: relevance_score is that
    probability, and TEI's raw_scores gives back the logit."""
    r = Reranker("cross-encoder", backend_instance=ScriptedBackend(relevance=lambda q, d: 2.0 * d.count("gold") - 1))
    with ServerThread(create_app(r)) as s:
        cohere_like = httpx.post(s.url + "/v1/rerank", json={"query": "q", "documents": ["gold", "x"]}).json()
        tei = httpx.post(s.url + "/rerank", json={"query": "q", "texts": ["gold", "x"], "raw_scores": True}).json()
    assert [x["relevance_score"] for x in cohere_like["results"]] == pytest.approx([sig(1.0), sig(-1.0)])
    assert [x["score"] for x in tei] == pytest.approx([1.0, -1.0])
