"""The openai backend's async calls against the stub server: the same answers as the blocking calls,
through httpx.AsyncClient with bounded concurrency, retries and partial results; Reranker.arerank on it."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

pytest.importorskip("httpx")

from stub_openai import MODELS, YES_NO, completion  # noqa: E402

from rerankkit import Reranker  # noqa: E402
from rerankkit.backends.base import Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.http import ServerError  # noqa: E402
from rerankkit.backends.openai_compat import OpenAIBackend  # noqa: E402

REQ = ScoreRequest(Prompt.user("Passage: p\nQuery: q"), ("Yes", "No", " yes", " no"))



def route(completions=None, embeddings=None):
    def reply(path, body):
        if path.endswith("/models"):
            return 200, MODELS, {}
        if path.endswith("/completions") and completions:
            return completions(body)
        if path.endswith("/embeddings") and embeddings:
            return embeddings(body)
        return 404, {"error": {"message": f"no route {path}"}}, {}
    return reply


def backend(url, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend("stub-model", base_url=url, tokenizer="server", endpoint="completions", **kw)


def test_ascore_agenerate_aembed_equal_the_blocking_calls(stub):
    def comp(body):
        if body.get("logprobs"):
            return 200, completion(YES_NO), {}
        return 200, {"choices": [{"text": body["prompt"][-3:]}], "usage": {"prompt_tokens": 3,
                                                                           "completion_tokens": 1}}, {}

    def emb(body):
        return 200, {"data": [{"index": i, "embedding": [len(t), 1.0]} for i, t in enumerate(body["input"])]}, {}

    s = stub(route(comp, emb), delay=0.03)
    be = backend(s.url, max_concurrency=3, embed_batch_size=2)
    reqs = [REQ] * 9
    got = asyncio.run(be.ascore(reqs))
    assert all(np.allclose(g, [YES_NO[c] for c in REQ.choices]) for g in got)
    assert 1 < s.max_in_flight <= 3
    assert be.client.replies == 0 and be._aclient.replies == 9  # the async client did the requests
    prompts = [Prompt.user(f"{i:03d}") for i in range(7)]
    gens = asyncio.run(be.agenerate(prompts, 2))
    assert [g.text for g in gens] == [g.text for g in be.generate(prompts, 2)] == [f"{i:03d}" for i in range(7)]
    texts = ["aaa", "b", "cc", "dddd", "e"]
    assert np.allclose(asyncio.run(be.aembed(texts)), be.embed(texts))
    assert be.usage.snapshot()["model_calls"] == 9 + 14 + 10


def test_async_retries_and_partial_results(stub):
    seen = {"n": 0}

    def flaky(body):
        seen["n"] += 1
        if seen["n"] == 1:
            return 503, {"error": {"message": "loading"}}, {}
        if seen["n"] == 2:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0.05"}
        if seen["n"] > 5:
            return 400, {"error": {"message": "prompt too long"}}, {}
        return 200, completion(YES_NO), {}

    s = stub(route(flaky))
    be = backend(s.url, max_concurrency=1)
    assert np.allclose(asyncio.run(be.ascore([REQ]))[0], [YES_NO[c] for c in REQ.choices])
    assert be._aclient.retries == 2
    with pytest.raises(ServerError, match="prompt too long") as info:
        asyncio.run(be.ascore([REQ] * 5))
    assert sorted(info.value.partial) == [0, 1] and info.value.status == 400  # replies 4 and 5 succeeded


def test_arerank_runs_on_the_event_loop_and_matches_rerank(stub):
    """32 concurrent arerank calls over the openai backend: no worker thread, at most max_concurrency
    requests in flight, the rankings of the blocking path."""
    def comp(body):  # the answer depends on the document: its length decides p(yes)
        doc = body["prompt"].split("Passage: ", 1)[1].split("\n", 1)[0]
        p = min(0.95, 0.1 + 0.08 * len(doc))
        top = {"Yes": math.log(p), "No": math.log(1 - p)}
        top.update({v: -9.0 for v in (" Yes", "yes", " yes", " No", "no", " no")})
        return 200, completion(top), {}

    s = stub(route(comp), delay=0.01)
    r = Reranker("pointwise-yes-no", backend="openai", model="stub-model", base_url=s.url, tokenizer="server",
                 endpoint="completions", max_concurrency=4, logit_bias=False)
    docs = ["a", "bbbbbbb", "ccc", "dddddddddd"]
    sync = r.rerank("q", docs)

    async def main():
        return await asyncio.gather(*(r.arerank(f"q{i}", docs) for i in range(32)))

    outs = asyncio.run(main())
    assert all(o.docids == sync.docids == ["3", "1", "2", "0"] for o in outs)
    assert r._aio._batcher is None  # the native async path, not the worker thread
    assert 1 < s.max_in_flight <= 4
    r.close()


def test_async_generation_sends_the_strategys_sampling_as_the_blocking_path(stub):
    """GroupRank's seeded sampling reaches agenerate's request bodies exactly as it reaches generate's."""
    import json
    import re

    seen: list[tuple[str, tuple]] = []

    def comp(body):
        seen.append((body["prompt"], (body.get("temperature"), body.get("top_p"), body.get("seed"))))
        labels = re.findall(r"^\[(\d+)\]\. (\w+)", body["prompt"], flags=re.M)
        text = json.dumps({f"[{k}]": len(doc) for k, doc in labels})
        return 200, {"choices": [{"text": text}], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}, {}

    s = stub(route(comp))
    r = Reranker("grouprank-smollm2-135m", backend="openai", model="stub-model", base_url=s.url, tokenizer="server",
                 endpoint="completions", group_size=2, seed=7)
    docs = ["a", "bbbbbbb", "ccc", "dddddddddd"]
    sync = r.rerank("q", docs)
    sync_bodies, seen[:] = sorted(seen), []
    got = asyncio.run(r.arerank("q", docs))
    assert r._aio._batcher is None  # the native async path
    assert got.docids == sync.docids == ["3", "1", "2", "0"]
    assert sorted(seen) == sync_bodies
    assert {b[1][:2] for b in seen} == {(0.3, 0.8)} and len({b[1][2] for b in seen}) == len(seen) > 1
    r.close()
