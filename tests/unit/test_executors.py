"""Executors without a cluster: sharding, the local executor, the sharded rerank path, option parsing, the hub."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit import Reranker
from rerankkit.answer_cache import Entry
from rerankkit.errors import ClusterError, ConfigError
from rerankkit.executors import (
    LocalExecutor,
    RayExecutor,
    balanced_shards,
    contiguous_shards,
    ray_executor_from_args,
)
from rerankkit.executors.hub import Hub
from rerankkit.spec import RerankerSpec
from rerankkit.types import Doc, Query, Ranking, Run, ScoredDoc


@given(st.lists(st.integers(0, 200), max_size=60), st.integers(1, 8))
def test_balanced_shards_cover_every_index_once_and_balance(weights, n):
    shards = balanced_shards(weights, n)
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(len(weights)))
    assert len(shards) <= n and all(s == sorted(s) and s for s in shards)
    if shards:  # LPT: no shard exceeds the lightest by more than the heaviest single item
        loads = [sum(weights[i] for i in s) for s in shards]
        if len(shards) == n:
            assert max(loads) - min(loads) <= max(weights)


def test_balanced_shards_by_candidate_count():
    assert balanced_shards([100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10], 2) == [[0], list(range(1, 11))]
    assert balanced_shards([5, 5, 5, 5], 2) == [[0, 2], [1, 3]]
    with pytest.raises(ValueError):
        balanced_shards([1], 0)


def test_contiguous_shards():
    assert [list(r) for r in contiguous_shards(5, 2)] == [[0, 1], [2, 3], [4]]
    assert contiguous_shards(0, 3) == []


def _run(n_queries: int = 5, n_docs: int = 7) -> Run:
    return Run([Ranking(Query(f"q{q}", f"query number {q}"),
                        tuple(ScoredDoc(Doc(f"d{q}-{d}", f"passage {d} about topic {q * d}"), float(-d))
                              for d in range(n_docs + q)))
                for q in range(n_queries)])


def _spec(strategy: str = "pointwise", template: str = "yes-no", **params) -> RerankerSpec:
    return RerankerSpec(strategy=strategy, template=template, backend="random", model="random",
                        params=params, backend_options={"seed": 3})


@pytest.mark.parametrize("spec", [_spec(), _spec("pairwise", "prp", method="heapsort", k=3)])
def test_local_executor_gives_the_plain_run(spec, tmp_path):
    run = _run()
    plain = Reranker(spec).rerank_run(run, depth=6)
    sharded = Reranker(spec).rerank_run(run, depth=6, executor=LocalExecutor())
    assert list(plain) == list(sharded)
    for qid in plain:
        assert plain[qid].docids == sharded[qid].docids
        assert [d.score for d in plain[qid].docs] == [d.score for d in sharded[qid].docs]
    assert sharded.metadata["usage"] == plain.metadata["usage"]
    assert sharded.metadata["totals"] == plain.metadata["totals"]
    assert sharded.metadata["executor"]["executor"] == "local"


def test_local_executor_runs_shards_in_order_with_the_cache(tmp_path):
    seen = []

    class Task:
        def setup(self, ctx):
            seen.append(("setup", ctx.store is not None))
            return {"calls": 0}

        def run(self, state, shard, ctx):
            state["calls"] += 1
            for x in shard:
                ctx.done(str(x))
            return sum(shard)

        def teardown(self, state):
            seen.append(("teardown", state["calls"]))

    got = []
    res = LocalExecutor().map(Task(), [[1, 2], [3], [4, 5]], cache=tmp_path / "c.sqlite",
                              on_result=lambda i, r: got.append((i, r)))
    assert res.results == [3, 3, 9] and got == [(0, 3), (1, 3), (2, 9)]
    assert seen == [("setup", True), ("teardown", 3)]


def test_rerank_task_pickles_without_the_local_backend():
    import pickle

    from rerankkit.executors.rerank import RerankTask

    r = Reranker(_spec())
    _ = r.backend
    task = pickle.loads(pickle.dumps(RerankTask(r.spec, 4, r)))
    assert task.local is None and task.spec == r.spec and task.chunk_size == 4


def test_ray_options_from_the_command_line():
    ex = ray_executor_from_args("127.0.0.1:6379", {"workers": "3", "num_gpus": "1", "resources.big": "0.5",
                                                   "max_restarts": "5"})
    assert (ex.address, ex.workers, ex.num_gpus, ex.num_cpus, ex.resources, ex.max_restarts) == \
        ("127.0.0.1:6379", 3, 1.0, 1.0, {"big": 0.5}, 5)
    assert ray_executor_from_args("local").address is None
    with pytest.raises(ConfigError, match="unknown Ray option 'gpus'"):
        ray_executor_from_args(None, {"gpus": "1"})
    with pytest.raises(ConfigError, match="cannot read 'x' as int"):
        ray_executor_from_args(None, {"workers": "x"})
    with pytest.raises(ConfigError, match="Ray Client"):
        RayExecutor("ray://head:10001")
    with pytest.raises(ConfigError, match="at least 1"):
        RayExecutor(workers=0)


def test_unreachable_address_fails_fast_with_a_clear_error():
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = RayExecutor(f"127.0.0.1:{port}", connect_timeout_s=2)
    with pytest.raises(ClusterError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}.*ray start --head"):
        ex.connect()
    with pytest.raises(ConfigError, match="HOST:PORT"):
        RayExecutor("nonsense").connect()


def test_hub_counts_lost_answers_and_progress(tmp_path):
    hub = Hub(str(tmp_path / "c.sqlite"))
    assert hub.hello(0, 11, "n1") == 1 and hub.hello(1, 12, "n2") == 1
    hub.computing(4)
    hub.put_many([Entry(f"k{i}", "score", [0.5]) for i in range(4)], "m")
    hub.computing(3)  # worker 0 dies with these 3 answers computed but not stored
    assert hub.hello(0, 13, "n1") == 2
    hub.computing(3)
    hub.put_many([Entry(f"k{i}", "score", [0.5]) for i in range(4, 7)], "m")
    hub.mark_done(["q1", "q2"])
    hub.mark_done(["q1"])
    s = hub.status()
    assert (s["model_calls"], s["stored"], s["repeated_calls"], s["restarts"], s["done"], s["nodes"]) == \
        (10, 7, 3, 1, 2, 2)
    assert s["workers"][0] == {"pid": 13, "node": "n1"}
    assert set(hub.get_many(["k0", "k6", "nope"])) == {"k0", "k6"}
    hub.close()


def test_a_workers_counting_backend_passes_sampling_and_counts_every_request_kind(tmp_path):
    """Under a cluster's answer cache: sampled replies keep their sampling, relevance pairs are announced."""
    from rerankkit.backends.base import Prompt, Sampling
    from rerankkit.backends.cached import CachedBackend
    from rerankkit.backends.fake import ScriptedBackend
    from rerankkit.executors.base import CountingBackend

    class Recording(ScriptedBackend):
        def generate(self, prompts, max_new_tokens, sampling=None):
            self.samplings = sampling
            return super().generate(prompts, max_new_tokens, sampling)

    inner = Recording(generate=lambda text: text[-1], relevance=lambda q, d: float(len(d)))
    announced: list[int] = []
    backend = CachedBackend(CountingBackend(inner, announced.append), tmp_path / "c.sqlite")
    hot = Sampling(0.5, 0.9, 3)
    assert [g.text for g in backend.generate([Prompt.user("a1"), Prompt.user("b2")], 4, sampling=hot)] == ["1", "2"]
    assert inner.samplings == [hot, hot]
    assert list(backend.relevance([("q", "abc"), ("q", "de")])) == [3.0, 2.0]
    assert announced == [2, 2]
    backend.close()


class _Transporting(LocalExecutor):
    """In this process, but like a cluster: 2 workers, and the task, shards and results cross a pickle."""

    in_process = False

    def __init__(self, forget: tuple[str, ...] = ()):
        super().__init__()
        self.forget = forget  # presets a fresh worker process would not know (registered from a config file)

    def workers_for(self, n_shards: int) -> int:
        return min(2, n_shards)

    def map(self, task, shards, **kw):
        import pickle

        from rerankkit.presets import RERANKER_PRESETS

        task = pickle.loads(pickle.dumps(task))
        hidden = {name: RERANKER_PRESETS._items.pop(name) for name in self.forget}
        try:
            res = super().map(task, pickle.loads(pickle.dumps(list(shards))), **kw)
        finally:
            RERANKER_PRESETS._items.update(hidden)
        res.results = pickle.loads(pickle.dumps(res.results))
        return res


def test_sharded_rerank_across_two_workers_equals_the_plain_run(tmp_path):
    spec = _spec("pairwise", "prp", method="heapsort", k=3)
    run = _run(n_queries=5)
    plain = Reranker(spec).rerank_run(run, depth=6)
    cache = tmp_path / "answers.sqlite"
    sharded = Reranker(spec, cache=cache).rerank_run(run, depth=6, executor=_Transporting())
    for qid in plain:
        assert plain[qid].docids == sharded[qid].docids
        assert [d.score for d in plain[qid].docs] == [d.score for d in sharded[qid].docs]
    ex = sharded.metadata["executor"]
    assert ex["shard_sizes"] == [3, 2] and sum(ex["shard_candidates"]) == 5 * 6
    assert sharded.metadata["usage"]["model_calls"] == plain.metadata["usage"]["model_calls"]
    again = Reranker(spec, cache=cache).rerank_run(run, depth=6)  # the workers' answers are this process's
    assert again.metadata["usage"]["model_calls"] == 0


def test_bench_pairs_on_workers_write_the_same_results(tmp_path, data_root):
    import json
    import textwrap

    from rerankkit.bench import load_config, run_bench

    (tmp_path / "p.toml").write_text(textwrap.dedent("""
        [pointwise-random-x]
        description = "pseudo-random pointwise"
        paper = "none: a model-free test preset"
        strategy = "pointwise"
        template = "yes-no"
        backend = "random"
        model = "random"
    """), encoding="utf-8")
    (tmp_path / "g.yaml").write_text(textwrap.dedent("""
        name: g
        presets: [p.toml]
        datasets: [dl19]
        measures: [nDCG@10]
        defaults: {candidates: bm25, k: 5, depth: 5, queries: 3}
        conditions:
          - {name: bm25, reranker: none}
          - {name: a, reranker: pointwise-random-x}
          - {name: b, reranker: pointwise-random-x, overrides: {seed: 5}}
    """), encoding="utf-8")
    cfg = load_config(tmp_path / "g.yaml")
    run_bench(cfg, tmp_path / "one", progress=False)
    # a worker process has not read the config's presets file: the task must bring the spec along
    run_bench(cfg, tmp_path / "two", progress=False, executor=_Transporting(forget=("pointwise-random-x",)))
    drop = {"wall_s", "started", "finished", "machine", "versions", "load_s", "model_s", "cost_s", "cached_model_s",
            "search_s", "config"}

    def rows(d):
        def clean(x):
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items() if k not in drop}
            return x
        return [clean(json.loads(line)) for line in (d / "results.jsonl").read_text().splitlines()]

    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["condition"] for r in one] == ["bm25", "a", "b"] and not any("error" in r for r in two)
    assert one == two
    for f in (tmp_path / "one" / "runs").glob("*.trec"):
        assert f.read_bytes() == (tmp_path / "two" / "runs" / f.name).read_bytes()
