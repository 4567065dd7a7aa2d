"""Run a benchmark config: first stage, rerank (through the answer cache), evaluate, account costs.

Every (condition, dataset) pair writes its TREC run and one results line as soon as it finishes;
model answers are committed to the cache batch by batch, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RerankkitError
from ..executors.base import Executor, WorkerContext
from ..types import Run
from .config import BenchConfig, Condition
from .results import machine, save_record, versions

log = logging.getLogger(__name__)
_COUNTERS = ("model_calls", "cached_calls", "prompt_tokens", "generated_tokens", "cached_prompt_tokens",
             "cached_generated_tokens", "model_s", "cached_model_s", "corrupt_entries")


def default_output(config: BenchConfig) -> Path:
    return config.output or Path("bench-results") / config.name


def cache_path(config: BenchConfig, out_dir: Path, cache: Path | bool | None = None) -> Path | None:
    """Where model answers are cached (``None``: caching off). ``cache`` overrides the config."""
    setting = config.cache if cache is None else cache
    if setting is False:
        return None
    return out_dir / "cache.sqlite" if setting is True else Path(setting)


def run_bench(
    config: BenchConfig,
    out_dir: str | Path | None = None,
    only: Sequence[str] | None = None,
    cache: Path | bool | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run the selected pairs; return their records (also written to ``OUT/results.jsonl``).

    ``executor`` (e.g. ``RayExecutor()``) schedules the condition x dataset pairs across its workers;
    the records, run files and report are the same as in one process (timings aside).
    """
    out = Path(out_dir) if out_dir else default_output(config)
    out.mkdir(parents=True, exist_ok=True)
    pairs = config.pairs(only)
    order = [(c.name, d) for c, d in config.pairs()]
    store_path = cache_path(config, out, cache)

    def save(i: int, result: tuple[dict[str, Any], Run | None, dict[str, Any]]) -> None:
        rec, run, per_query = result
        if run is not None:
            _write_pair(out, rec, run, per_query)
        rec["cache"] = _shown(store_path, out) if store_path else None
        save_record(out, rec, order)

    if executor is not None and not executor.in_process:
        from ..presets import RERANKER_PRESETS

        # presets from the config's own files travel as specs (the workers' nodes may not see those files)
        presets = {c.reranker: RERANKER_PRESETS.get(c.reranker) for c, _ in pairs if c.reranker}
        task = BenchTask(config, caching=store_path is not None, presets=presets)
        res = executor.map(task, pairs, cache=store_path, cache_chunk=config.cache_chunk, total=len(pairs),
                           progress=progress, desc=f"bench {config.name}", unit="run", on_result=save)
        return [r[0] for r in res.results]
    store = None
    if store_path is not None:
        from ..answer_cache import CallCache

        store = CallCache(store_path)
    state = _State(config, _cache_wrapper(store, config.cache_chunk), store is not None, progress)
    last = {c.name: i for i, (c, _) in enumerate(pairs)}
    records = []
    from tqdm.auto import tqdm

    bar = tqdm(pairs, desc=f"bench {config.name}", unit="run", disable=not progress)
    try:
        for i, (cond, ds) in enumerate(bar):
            bar.set_postfix_str(f"{cond.name}/{config.label(ds)}")
            result = state.pair_or_error(cond, ds)
            save(i, result)
            records.append(result[0])
            if last[cond.name] == i:
                state.close_reranker(cond.name)
    finally:
        bar.close()
        state.close()
        if store is not None:
            store.close()
    return records


@dataclass
class BenchTask:
    """A worker's part of a bench run: datasets, first stages and rerankers built as its pairs need them
    (a worker keeps one reranker loaded at a time; pairs of one condition arrive one after another)."""

    config: BenchConfig
    caching: bool
    presets: dict[str, Any] = field(default_factory=dict)  # name -> RerankerSpec, registered where unknown

    def setup(self, ctx: WorkerContext) -> _State:
        from ..presets import RERANKER_PRESETS

        for name, spec in self.presets.items():
            if name not in RERANKER_PRESETS:
                RERANKER_PRESETS.register(name, spec)
        return _State(self.config, ctx.wrap if self.caching else None, self.caching, progress=False)

    def run(self, state: _State, pair: tuple[Condition, str], ctx: WorkerContext
            ) -> tuple[dict[str, Any], Run | None, dict[str, Any]]:
        cond, ds = pair
        for name in [n for n in state.rerankers if n != cond.name]:
            state.close_reranker(name)
        result = state.pair_or_error(cond, ds)
        ctx.done(f"{cond.name}/{ds}")
        return result

    def teardown(self, state: _State) -> None:
        state.close()


def _cache_wrapper(store: Any, chunk: int) -> Callable[[Any], Any] | None:
    if store is None:
        return None
    from ..backends.cached import CachedBackend

    return lambda backend: CachedBackend(backend, store, chunk=chunk)


class _State:
    """What a bench run shares across pairs: datasets, first-stage runs, loaded rerankers.

    ``wrap`` puts a freshly loaded backend behind the answer cache (None: no cache).
    """

    def __init__(self, config: BenchConfig, wrap: Callable[[Any], Any] | None, caching: bool, progress: bool):
        self.config = config
        self.wrap = wrap
        self.caching = caching
        self.progress = progress
        self.datasets: dict[str, Any] = {}
        self.first: dict[Any, tuple[Run, dict[str, Any]]] = {}
        self.rerankers: dict[str, tuple[Any, float]] = {}

    def pair_or_error(self, cond: Condition, ds: str) -> tuple[dict[str, Any], Run | None, dict[str, Any]]:
        """(record, run, per-query metrics) of one pair; a rerankkit error becomes an error record."""
        try:
            return self.run_pair(cond, ds)
        except RerankkitError as exc:
            log.error("%s/%s failed: %s", cond.name, self.config.label(ds), exc)
            return {"condition": cond.name, "dataset": ds, "dataset_label": self.config.label(ds),
                    "error": str(exc)}, None, {}

    # -- one pair ------------------------------------------------------------------------------------
    def run_pair(self, cond: Condition, ds_name: str) -> tuple[dict[str, Any], Run, dict[str, Any]]:
        from ..eval import evaluate

        started = datetime.now(UTC).isoformat(timespec="seconds")
        ds = self._dataset(ds_name)
        first, retrieve = self._first_stage(cond, ds)
        rerank: dict[str, Any] | None = None
        run = first
        if cond.reranker:
            run, rerank = self._rerank(cond, first)
        scope = retrieve.pop("selected_qids", None)
        result = evaluate(run, ds, self.config.measures, missing_as_zero=self.config.missing_as_zero, queries=scope)
        label = self.config.label(ds_name)
        run = Run(run.values(), {**run.metadata, "condition": cond.name, "dataset": ds_name,
                                 "config": self.config.name})
        run_file = Path("runs") / f"{cond.name}.{_slug(label)}.trec"
        n = max(1, len(run))
        stage = rerank or {}
        record: dict[str, Any] = {
            "condition": cond.name,
            "dataset": ds_name,
            "dataset_label": label,
            "queries": len(run),
            "metrics": dict(result.aggregate),
            "evaluation": {"judged_queries": result.num_queries, "missing_queries": result.missing_queries,
                           "missing_as_zero": self.config.missing_as_zero},
            "model_calls": stage.get("model_calls", 0),
            "cached_calls": stage.get("cached_calls", 0),
            "requests": stage.get("requests", 0),
            "prompt_tokens": stage.get("prompt_tokens", 0),
            "generated_tokens": stage.get("generated_tokens", 0),
            "wall_s": round(retrieve["wall_s"] + stage.get("wall_s", 0.0), 4),
            "per_query": {
                "requests": stage.get("requests", 0) / n,
                "model_calls": stage.get("model_calls", 0) / n,
                "cached_calls": stage.get("cached_calls", 0) / n,
                "prompt_tokens": (stage.get("prompt_tokens", 0) + stage.get("cached_prompt_tokens", 0)) / n,
                "generated_tokens": (stage.get("generated_tokens", 0) + stage.get("cached_generated_tokens", 0)) / n,
                "wall_s": (retrieve["wall_s"] + stage.get("wall_s", 0.0)) / n,
                "model_s": stage.get("cost_s", 0.0) / n,
            },
            "stages": {"retrieve": retrieve, **({"rerank": rerank} if rerank else {})},
            "setup": _setup(cond),
            "expected": {e.measure: {"value": e.value, "tolerance": e.tolerance}
                         for e in cond.expected if e.dataset == ds_name},
            "config": {"name": self.config.name, "path": _shown(self.config.path, Path.cwd()),
                       "sha256": self.config.sha256},
            "run_file": str(run_file),
            "versions": versions(),
            "machine": machine(),
            "started": started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if run.metadata.get("spec"):
            record["spec"] = run.metadata["spec"]
        return record, run, dict(result.per_query)

    def _dataset(self, name: str) -> Any:
        from ..data import load_dataset

        if name not in self.datasets:
            self.datasets[name] = load_dataset(name)
        return self.datasets[name]

    def _first_stage(self, cond: Condition, ds: Any) -> tuple[Run, dict[str, Any]]:
        key = (cond.retriever, cond.remove_query, json.dumps(dict(cond.retriever_overrides), sort_keys=True, default=str),
               cond.candidates, ds.name, cond.k, cond.queries)
        if key in self.first:
            run, stage = self.first[key]
            return run, {**stage, "reused": True}
        t0 = time.perf_counter()
        if cond.retriever:
            run, stage = _retrieve(cond, ds, self.progress)
        else:
            run, stage = _candidates(cond, ds)
        stage["wall_s"] = round(time.perf_counter() - t0, 4)
        stage["queries"] = len(run)
        if cond.queries:  # evaluation covers the selected queries only, those missing from the run included
            stage["selected_qids"] = stage.get("selected_qids") or list(run)
        self.first[key] = (run, stage)
        return run, dict(stage)

    def _rerank(self, cond: Condition, first: Run) -> tuple[Run, dict[str, Any]]:
        reranker, load_s = self._reranker(cond)
        backend = reranker.backend
        before = _counters(backend)
        t0 = time.perf_counter()
        run = reranker.rerank_run(first, depth=cond.depth, progress=self.progress, chunk_size=cond.chunk_size)
        wall = time.perf_counter() - t0
        after = _counters(backend)
        stage: dict[str, Any] = {k: after[k] - before[k] for k in _COUNTERS}
        stage["model_s"] = round(stage["model_s"], 4)
        stage["cached_model_s"] = round(stage["cached_model_s"], 4)
        stage["requests"] = sum(int(r.metadata.get("model_calls", 0)) for r in run.values())
        stage["wall_s"] = round(wall, 4)
        stage["load_s"] = round(load_s, 3)
        # model time as if nothing were cached: time spent now + the recorded time of cached answers
        stage["cost_s"] = round(stage["model_s"] + stage["cached_model_s"], 4) if self.caching else round(wall, 4)
        stage["truncated_docs"] = run.metadata.get("truncated_docs", 0)
        self.rerankers[cond.name] = (reranker, 0.0)  # later datasets do not pay the load again
        return run, stage

    def _reranker(self, cond: Condition) -> tuple[Any, float]:
        if cond.name in self.rerankers:
            return self.rerankers[cond.name]
        from ..backends import create_backend
        from ..reranker import Reranker

        spec = Reranker(cond.reranker or "", **dict(cond.overrides)).spec
        t0 = time.perf_counter()
        backend = create_backend(spec.backend, spec.model, **dict(spec.backend_options))
        load_s = time.perf_counter() - t0
        if self.wrap is not None:
            backend = self.wrap(backend)
        entry = (Reranker(spec, backend_instance=backend), load_s)
        self.rerankers[cond.name] = entry
        return entry

    def close_reranker(self, name: str) -> None:
        entry = self.rerankers.pop(name, None)
        if entry is not None:
            entry[0].close()

    def close(self) -> None:
        for name in list(self.rerankers):
            self.close_reranker(name)


def _write_pair(out: Path, record: dict[str, Any], run: Run, per_query: dict[str, dict[str, float]]) -> None:
    """The pair's TREC run and per-query metrics, under ``out`` (``record["run_file"]`` is relative to it)."""
    from ..data import write_run

    run_file = out / record["run_file"]
    write_run(run, run_file, tag=record["condition"])
    _write_per_query(run, per_query, run_file.with_suffix(".queries.jsonl"))


def _counters(backend: Any) -> dict[str, float]:
    stats = backend.stats() if hasattr(backend, "stats") else backend.usage.snapshot()
    return {k: stats.get(k, 0) for k in _COUNTERS}


def _retrieve(cond: Condition, ds: Any, progress: bool) -> tuple[Run, dict[str, Any]]:
    from ..retrievers import Retriever

    retriever = Retriever(cond.retriever, **dict(cond.retriever_overrides))
    try:
        info = retriever.index(ds, progress=progress)
        queries = ds.queries()[: cond.queries] if cond.queries else ds.queries()
        run = retriever.search(queries, k=cond.k or 100, remove_query=cond.remove_query, progress=progress)
    finally:
        retriever.close()
    return run, {"selected_qids": [q.qid for q in queries] if cond.queries else None,
                 "kind": "retriever", "retriever": cond.retriever, "spec": retriever.spec.to_dict(),
                 "index": info.to_dict(), "search_s": run.metadata.get("search_s"), "k": cond.k or 100,
                 "remove_query": cond.remove_query}


def _candidates(cond: Condition, ds: Any) -> tuple[Run, dict[str, Any]]:
    src = cond.candidates
    if src and "/" in src:
        p = Path(src)
        if p.suffix in (".trec", ".run", ".txt"):
            from ..data import attach_texts, read_run

            run = attach_texts(read_run(p), ds.doc_lookup())
        else:
            from ..data import read_candidates

            run = read_candidates(p)
    else:
        run = ds.candidates(src)
    run = run.head(cond.queries)
    if cond.k:
        run = run.top(cond.k)
    return run, {"kind": "candidates", "candidates": src or run.metadata.get("candidates"), "k": cond.k}


def _setup(cond: Condition) -> dict[str, Any]:
    return {"reranker": cond.reranker, "overrides": dict(cond.overrides), "retriever": cond.retriever,
            "retriever_overrides": dict(cond.retriever_overrides), "remove_query": cond.remove_query, "candidates": cond.candidates, "k": cond.k,
            "depth": cond.depth, "queries_limit": cond.queries, "chunk_size": cond.chunk_size, "notes": cond.notes}


def _write_per_query(run: Run, per_query: dict[str, dict[str, float]], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for qid, ranking in run.items():
            row = {"qid": qid, "requests": int(ranking.metadata.get("model_calls", 0)), **per_query.get(qid, {})}
            f.write(json.dumps(row) + "\n")


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies inside it (results stay valid when the folder moves)."""
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "dataset"
