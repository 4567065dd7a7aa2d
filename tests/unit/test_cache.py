"""The model-answer cache: hits are not model calls, misses are batched and stored, corruption is recomputed."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3

import numpy as np
import pytest

from rerankkit.answer_cache import CallCache, Entry, call_key
from rerankkit.backends.base import Prompt, ScoreRequest
from rerankkit.backends.cached import CachedBackend
from rerankkit.backends.fake import RandomBackend
from rerankkit.errors import ConfigError


def _requests(n: int, prefix: str = "q") -> list[ScoreRequest]:
    return [ScoreRequest(Prompt.user(f"{prefix} document number {i}"), ("Yes", "No")) for i in range(n)]


def test_hits_are_cached_calls_not_model_calls(tmp_path):
    inner = RandomBackend(seed=1)
    cb = CachedBackend(inner, tmp_path / "c.sqlite", chunk=4)
    reqs = _requests(10)
    first = cb.score(reqs)
    assert cb.usage.snapshot()["model_calls"] == 10 and cb.usage.cached_calls == 0
    assert inner.usage.batches == 3  # misses go to the model in chunks of 4, each stored as it returns
    again = cb.score(reqs[3:7] + reqs[:2])
    snap = cb.usage.snapshot()
    assert snap["model_calls"] == 10 and snap["cached_calls"] == 6
    assert inner.usage.calls == 10
    for a, b in zip(again, first[3:7] + first[:2]):
        np.testing.assert_array_equal(a, b)
    # a fresh wrapper over the same file (a new process, in effect) makes no model call either
    other = CachedBackend(RandomBackend(seed=1), tmp_path / "c.sqlite")
    out = other.score(reqs)
    assert other.usage.calls == 0 and other.usage.cached_calls == 10
    for a, b in zip(out, first):
        np.testing.assert_array_equal(a, b)
    stats = other.stats()
    assert stats["cached_prompt_tokens"] == sum(inner.count_tokens([inner.render(r.prompt) for r in reqs]))
    assert stats["cached_model_s"] > 0 and stats["model_s"] == 0


def test_only_misses_go_to_the_model_and_duplicates_once(tmp_path):
    inner = RandomBackend()
    cb = CachedBackend(inner, tmp_path / "c.sqlite")
    reqs = _requests(6)
    cb.score(reqs[:2])
    out = cb.score([reqs[0], reqs[4], reqs[4], reqs[1], reqs[5]])
    assert inner.usage.calls == 2 + 2  # reqs[4] and reqs[5] only, reqs[4] computed once
    assert cb.usage.cached_calls == 3
    np.testing.assert_array_equal(out[1], out[2])


def test_key_covers_model_options_prompt_and_choices(tmp_path):
    base = call_key("hf", "m", {"dtype": "bf16"}, "score", "p", choices=["Yes", "No"])
    assert base != call_key("hf", "m", {"dtype": "fp32"}, "score", "p", choices=["Yes", "No"])
    assert base != call_key("hf", "m2", {"dtype": "bf16"}, "score", "p", choices=["Yes", "No"])
    assert base != call_key("hf", "m", {"dtype": "bf16"}, "score", "p ", choices=["Yes", "No"])
    assert base != call_key("hf", "m", {"dtype": "bf16"}, "score", "p", choices=["No", "Yes"])
    assert base != call_key("hf", "m", {"dtype": "bf16"}, "generate", "p", choices=["Yes", "No"])
    # a different seed is a different model: nothing is shared
    CachedBackend(RandomBackend(seed=1), tmp_path / "c.sqlite").score(_requests(3))
    other = CachedBackend(RandomBackend(seed=2), tmp_path / "c.sqlite")
    other.score(_requests(3))
    assert other.usage.calls == 3 and other.usage.cached_calls == 0


def test_generate_and_embed_are_cached(tmp_path):
    inner = RandomBackend()
    cb = CachedBackend(inner, tmp_path / "c.sqlite")
    prompts = [Prompt.user(f"rank these {i}") for i in range(3)]
    g1 = cb.generate(prompts, 16)
    g2 = cb.generate(prompts, 16)
    assert g1 == g2 and inner.usage.calls == 3 and cb.usage.cached_calls == 3
    cb.generate(prompts[:1], 32)  # another max_new_tokens is another request
    assert inner.usage.calls == 4
    # sampled answers are keyed by their decoding too; greedy keys stay what they were
    from rerankkit.backends.base import Sampling

    greedy_again = cb.generate(prompts[:1], 16, sampling=Sampling())
    assert greedy_again == g1[:1] and inner.usage.calls == 4
    cb.generate(prompts[:2], 16, sampling=[Sampling(0.3, 0.8, 1), Sampling(0.3, 0.8, 2)])
    cb.generate(prompts[:2], 16, sampling=[Sampling(0.3, 0.8, 1), Sampling(0.3, 0.8, 2)])
    assert inner.usage.calls == 6  # computed once, answered from the cache the second time
    cb.generate(prompts[:1], 16, sampling=Sampling(0.3, 0.8, 3))  # another seed
    cb.generate(prompts[:1], 16, sampling=Sampling(0.5, 0.8, 1))  # another temperature
    assert inner.usage.calls == 8
    cb.generate(prompts[:1], 16, sampling=Sampling(min_new_tokens=16))  # a minimum length (rank_llm's listwise)
    cb.generate(prompts[:1], 16, sampling=Sampling(min_new_tokens=16))
    assert inner.usage.calls == 9
    top = ScoreRequest(Prompt.user("x"), ("A", "B"), top_k=30)
    cb.score([ScoreRequest(Prompt.user("x"), ("A", "B"))])
    cb.score([top])  # FIRST's top-k reading is another request
    cb.score([top])
    assert inner.usage.calls == 11
    inner.usage.calls = 4  # the embeddings below count from here
    e1 = cb.embed(["a b", "c d"])
    e2 = cb.embed(["c d", "a b"])
    np.testing.assert_array_equal(e1[::-1], e2)
    assert inner.usage.calls == 6


def test_corrupt_entry_is_detected_logged_and_recomputed(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    reqs = _requests(5)
    inner = RandomBackend()
    good = CachedBackend(inner, path).score(reqs)
    key = call_key("random", "random", inner.options(), "score", inner.render(reqs[2].prompt), choices=["Yes", "No"])
    with sqlite3.connect(path) as conn:  # flip the stored value behind the cache's back
        (value,) = conn.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        conn.execute("UPDATE calls SET value = ? WHERE key = ?", (bytes(value).replace(b"-", b"+", 1), key))
    inner2 = RandomBackend()
    cb = CachedBackend(inner2, path)
    with caplog.at_level(logging.WARNING, logger="rerankkit.answer_cache"):
        out = cb.score(reqs)
    assert "corrupt entry" in caplog.text and key[:16] in caplog.text
    assert cb.stats()["corrupt_entries"] == 1
    assert inner2.usage.calls == 1 and cb.usage.cached_calls == 4  # only the corrupt one went to the model
    for a, b in zip(out, good):
        np.testing.assert_array_equal(a, b)
    fresh = CachedBackend(RandomBackend(), path)  # it was overwritten with a good entry
    fresh.score(reqs)
    assert fresh.usage.calls == 0 and fresh.stats()["corrupt_entries"] == 0


def test_entry_of_the_wrong_shape_is_recomputed(tmp_path):
    path = tmp_path / "c.sqlite"
    inner = RandomBackend()
    req = _requests(1)[0]
    key = call_key("random", "random", inner.options(), "score", inner.render(req.prompt), choices=["Yes", "No"])
    with CallCache(path) as store:  # a valid checksum, but three numbers for two choices
        store.put_many([Entry(key, "score", [0.0, -1.0, -2.0])])
    cb = CachedBackend(inner, path)
    out = cb.score([req])
    assert out[0].shape == (2,) and inner.usage.calls == 1 and cb.stats()["corrupt_entries"] == 1


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        CallCache(bad)


def _writer(path: str, worker: int, n: int) -> None:
    store = CallCache(path)
    for i in range(0, n, 5):
        store.put_many([Entry(f"w{worker}-{j}", "score", [float(j), float(worker)], j, 0, 0.001)
                        for j in range(i, i + 5)])
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "c.sqlite")
    CallCache(path).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = CallCache(path)
    keys = [f"w{w}-{j}" for w in range(3) for j in range(200)]
    got = store.get_many(keys)
    assert len(store) == 600 and len(got) == 600 and store.corrupt == 0
    assert got["w2-17"].value == [17.0, 2.0] and got["w2-17"].prompt_tokens == 17


def test_reranker_cache_argument(tmp_path):
    from rerankkit import Doc, Reranker, RerankerSpec

    spec = RerankerSpec(strategy="pointwise", template="yes-no", backend="random", model="random")
    docs = [Doc(str(i), f"passage {i} about caching") for i in range(6)]
    r1 = Reranker(spec, cache=tmp_path / "c.sqlite")
    a = r1.rerank("what is a cache?", docs)
    assert r1.backend.usage.calls == 6
    r1.close()
    r2 = Reranker(spec, cache=tmp_path / "c.sqlite")
    b = r2.rerank("what is a cache?", docs)
    assert r2.backend.usage.calls == 0 and r2.backend.usage.cached_calls == 6
    assert a.docids == b.docids and [d.score for d in a.docs] == [d.score for d in b.docs]
    r2.close()
