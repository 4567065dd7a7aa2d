"""Runs on a real two-node Ray cluster (see conftest.py) give exactly the single-process results.

SmolLM2-135M fp32 on TREC DL19 (first 3 queries x BM25 top-10; the full 10 x 20 is eval/scale.py):
pointwise and PRP heapsort across 2 actors on 2 nodes equal the single-process run; killing one actor's
process mid-run (SIGKILL) still gives that run, with the repeated model calls counted; a dense index
built across two actors equals the single-process index; a bench grid gives the same results file.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time

import numpy as np
import pytest

from rerankkit import Reranker, load_dataset
from rerankkit.errors import ClusterError
from rerankkit.executors import RayExecutor

pytestmark = [pytest.mark.slow, pytest.mark.golden]
# The same arithmetic on both sides: one prompt per forward pass and one torch thread (what a 1-CPU actor
# uses). Then a prompt's answer depends neither on its batch mates nor on the thread count, and a
# shard's run is bit-for-bit the single-process one. Measured in one process with fp32 SmolLM2: batching
# moves scores by up to 1.5e-5 (3 queries together vs one at a time), 2 threads instead of 1 by 2e-5.
# On CPU a forward over one ~200-token prompt is compute-bound, so batch_size=1 costs about the same.
FP32 = {"dtype": "fp32", "batch_size": 1, "threads": 1}


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """``threads=1`` sets torch's process-wide thread count: give later tests theirs back."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def dl19(data_root):
    return load_dataset("trec-dl-2019/passage")


@pytest.fixture(scope="module")
def slice3(dl19):
    return dl19.candidates("bm25").head(3).top(10)


def _same_run(got, want) -> None:
    assert list(got) == list(want)
    for qid in want:
        assert got[qid].docids == want[qid].docids, qid
        assert [d.score for d in got[qid].docs] == [d.score for d in want[qid].docs], qid


def _executor(address: str, **kw) -> RayExecutor:
    return RayExecutor(address, workers=2, start_timeout_s=600, **kw)


def test_pointwise_on_two_nodes_equals_one_process_and_fills_the_cache(ray_cluster, slice3, tmp_path):
    want = Reranker("pointwise-smollm2-135m", **FP32).rerank_run(slice3)
    cache = tmp_path / "answers.sqlite"
    got = Reranker("pointwise-smollm2-135m", cache=cache, **FP32).rerank_run(slice3, executor=_executor(ray_cluster))
    _same_run(got, want)
    ex = got.metadata["executor"]
    assert ex["executor"] == "ray" and ex["worker_count"] == 2 and ex["nodes"] == 2, ex
    assert ex["shard_sizes"] == [2, 1] and ex["restarts"] == 0 and ex["repeated_calls"] == 0
    assert ex["model_calls"] == got.metadata["usage"]["model_calls"] == want.metadata["usage"]["model_calls"] == 30
    # the cluster's answers are the single process's cache entries: a rerun here asks the model nothing
    again = Reranker("pointwise-smollm2-135m", cache=cache, **FP32).rerank_run(slice3)
    _same_run(again, want)
    assert again.metadata["usage"]["model_calls"] == 0 and again.metadata["usage"]["cached_calls"] == 30


def test_prp_heapsort_survives_a_killed_actor(ray_cluster, slice3):
    prp = {"method": "heapsort", "k": 3, **FP32}  # top-3: fewer calls than k=10, still enough to kill an actor mid-run
    want = Reranker("prp-smollm2-135m", **prp).rerank_run(slice3)
    executor = _executor(ray_cluster)
    box: dict = {}

    def run() -> None:
        try:
            box["run"] = Reranker("prp-smollm2-135m", **prp).rerank_run(slice3, executor=executor)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    killed = None
    deadline = time.monotonic() + 900
    while thread.is_alive() and killed is None and time.monotonic() < deadline:
        status = executor.status()
        # worker 0 holds 2 of the 3 queries; kill it once the cluster has committed some answers
        if status and status["stored"] >= 16 and 0 in status["workers"]:
            killed = status["workers"][0]["pid"]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=900)
    assert killed is not None, "the run finished before an actor could be killed"
    assert "error" not in box, box.get("error")
    got = box["run"]
    _same_run(got, want)
    ex = got.metadata["executor"]
    print(f"killed pid {killed}: restarts {ex['restarts']}, model calls {ex['model_calls']} (single process "
          f"{want.metadata['usage']['model_calls']}), repeated {ex['repeated_calls']}, wall {ex['wall_s']} s")
    assert ex["restarts"] == 1 and ex["workers"][0]["pid"] != killed
    want_calls = want.metadata["usage"]["model_calls"]
    # only the batch in flight when the actor died is asked again, and every repeat is counted
    assert 0 <= ex["repeated_calls"] <= 32
    assert ex["model_calls"] == want_calls + ex["repeated_calls"]
    assert got.metadata["usage"]["model_calls"] + got.metadata["usage"]["cached_calls"] >= want_calls


def test_dense_index_across_two_actors_equals_one_process(ray_cluster, dl19, tmp_path):
    faiss = pytest.importorskip("faiss")
    from rerankkit.retrievers import Retriever

    docs = sorted({sd.doc.docid: sd.doc for r in dl19.candidates("bm25").head(10).top(20).values()
                   for sd in r.docs}.values(), key=lambda d: d.docid)
    one = Retriever("dense-minilm", cache_dir=tmp_path / "one", batch_size=8)
    two = Retriever("dense-minilm", cache_dir=tmp_path / "two", batch_size=8)
    import torch

    torch.set_num_threads(1)  # as in each 1-CPU actor (restored after the test)
    a = one.index(docs)
    b = two.index(docs, executor=_executor(ray_cluster))
    assert a.key == b.key and not b.reused
    va = faiss.read_index(str(a.path / "faiss.index")).reconstruct_n(0, len(docs))
    vb = faiss.read_index(str(b.path / "faiss.index")).reconstruct_n(0, len(docs))
    assert va.shape == (len(docs), 384)
    np.testing.assert_array_equal(va, vb)
    assert (a.path / "docs.jsonl").read_bytes() == (b.path / "docs.jsonl").read_bytes()
    queries = [q for q in dl19.queries()][:5]
    ra, rb = one.search(queries, k=10), two.search(queries, k=10)
    assert [r.docids for r in ra.values()] == [r.docids for r in rb.values()]


BENCH = """
name: grid
presets: [presets.toml]
datasets: [dl19]
measures: [nDCG@10, RR@10]
cache_chunk: 8
defaults: {candidates: bm25, k: 10, depth: 10, queries: 4}
conditions:
  - {name: bm25, reranker: none}
  - {name: pw-a, reranker: cluster-pointwise-random}
  - {name: pw-b, reranker: cluster-pointwise-random, overrides: {seed: 11}}
  - {name: prp, reranker: cluster-prp-random, overrides: {method: heapsort, k: 3}}
"""
PRESETS = """
[cluster-pointwise-random]
description = "pointwise yes/no over pseudo-random answers"
paper = "none: a model-free test preset"
strategy = "pointwise"
template = "yes-no"
backend = "random"
model = "random"
[cluster-pointwise-random.backend_options]
seed = 7
[cluster-prp-random]
description = "PRP over pseudo-random answers"
paper = "none: a model-free test preset"
strategy = "pairwise"
template = "prp"
backend = "random"
model = "random"
"""
# how long things took and where, not what came out; `reused`: whether this process had already made the same
# first-stage run for an earlier pair (each actor makes its own)
VOLATILE = {"wall_s", "started", "finished", "machine", "versions", "load_s", "search_s", "model_s", "cost_s",
            "cached_model_s", "build_s", "index", "config", "reused"}


def _stable(x):
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return x


def _differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_bench_grid_across_actors_writes_the_single_process_results(ray_cluster, tmp_path, data_root):
    from rerankkit.bench import load_config, run_bench

    (tmp_path / "presets.toml").write_text(textwrap.dedent(PRESETS), encoding="utf-8")
    (tmp_path / "grid.yaml").write_text(textwrap.dedent(BENCH).lstrip(), encoding="utf-8")
    cfg = load_config(tmp_path / "grid.yaml")
    run_bench(cfg, tmp_path / "one", progress=False)
    run_bench(cfg, tmp_path / "two", progress=False, executor=_executor(ray_cluster))

    def lines(d):
        return [_stable(json.loads(x)) for x in (d / "results.jsonl").read_text().splitlines()]

    one, two = lines(tmp_path / "one"), lines(tmp_path / "two")
    assert [(r["condition"], r["dataset"]) for r in one] == [("bm25", "trec-dl-2019/passage"),
                                                             ("pw-a", "trec-dl-2019/passage"),
                                                             ("pw-b", "trec-dl-2019/passage"),
                                                             ("prp", "trec-dl-2019/passage")]
    for a, b in zip(one, two):
        assert a == b, _differences(a, b)
    for f in sorted((tmp_path / "one" / "runs").iterdir()):
        other = tmp_path / "two" / "runs" / f.name
        if f.suffix == ".trec" or f.name.endswith(".queries.jsonl"):
            assert f.read_bytes() == other.read_bytes(), f.name
    report = (tmp_path / "two" / "results.jsonl").read_text()
    assert '"model_calls": 40' in report  # pointwise: 4 queries x 10 candidates, asked once


def test_resources_the_cluster_lacks_fail_fast(ray_cluster):
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="no node of the Ray cluster.*GPU 1"):
        RayExecutor(ray_cluster, num_gpus=1).workers_for(3)
    with pytest.raises(ClusterError, match="3 actors of CPU 1 do not fit.*room for 2"):
        RayExecutor(ray_cluster, workers=3).workers_for(3)
    with pytest.raises(ClusterError, match="no node.*CPU 2"):
        Reranker("pointwise-smollm2-135m").rerank_run(
            load_dataset("trec-dl-2019/passage").candidates("bm25").head(1).top(2),
            executor=RayExecutor(ray_cluster, num_cpus=2))
    assert time.monotonic() - t0 < 30


def test_cli_rerank_on_the_cluster_writes_the_local_run(ray_cluster, tmp_path, data_root):
    from rerankkit.cli.main import main

    (tmp_path / "presets.toml").write_text(textwrap.dedent(PRESETS), encoding="utf-8")
    common = ["rerank", "cluster-pointwise-random", "--presets", str(tmp_path / "presets.toml"), "--dataset",
              "trec-dl-2019/passage", "--queries", "5", "--depth", "10", "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "local.run")]) == 0
    assert main([*common, "-o", str(tmp_path / "ray.run"), "--ray", ray_cluster, "--ray-set", "workers=2"]) == 0
    assert (tmp_path / "ray.run").read_text() == (tmp_path / "local.run").read_text()
    meta = json.loads((tmp_path / "ray.run.meta.json").read_text())
    assert meta["executor"]["worker_count"] == 2 and meta["executor"]["model_calls"] == 50


def test_an_actor_dying_past_max_restarts_fails_with_a_clear_error(ray_cluster, slice3):
    from rerankkit.spec import RerankerSpec

    spec = RerankerSpec(strategy="pointwise", template="yes-no", backend="random", model="random",
                        backend_options={"delay": 0.2}, params={})
    executor = RayExecutor(ray_cluster, workers=2, max_restarts=0, max_task_retries=0, cache_chunk=2)
    box: dict = {}

    def run() -> None:
        try:
            Reranker(spec).rerank_run(slice3, executor=executor)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while thread.is_alive() and time.monotonic() < deadline:
        status = executor.status()
        if status and status["stored"] >= 2 and 0 in status["workers"]:
            os.kill(status["workers"][0]["pid"], signal.SIGKILL)
            break
        time.sleep(0.05)
    thread.join(timeout=300)
    assert isinstance(box.get("error"), ClusterError), box
    assert "actor 0 died and was not restarted (max_restarts=0" in str(box["error"])
    assert "cache=PATH" in str(box["error"])
