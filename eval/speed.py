"""Issue 22's speed tables: offline presets before/after the dtype default, PRP/setwise vs llm-rankers, and each
rerankkit arm against its forward-pass floor. Arms alternate query by query, so machine load hits all alike.

    cd REPO && PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        TOKENIZERS_PARALLELISM=false flock /tmp/rerankkit-heavy.lock \
        python eval/speed.py --queries 10 --depth 20 --threads 1 --tables a,b

Tables (eval/speed.md explains the method; the script writes its tables between the markers there):

- (a) every offline preset (its model is ``packaged:``) on DL19 BM25 top-``depth``: s/query with the shipped
  defaults (``dtype="auto"``, the hf prefix cache on) and as before issue 22 (``dtype="fp32"``,
  ``prefix_cache=false``), nDCG@10 of both.
- (b) PRP heapsort, PRP sliding-10, setwise heapsort: rerankkit's preset defaults with llm-rankers' tie rule
  (``ties="incumbent"``; PRP heapsort's own default is ``input_order``, eval/fidelity.md) vs
  ielab/llm-rankers unmodified (fp32, its only CPU type) and cast to bf16, in a worker process
  (``speed_llmrankers.py``, which reuses ``tests/reference/llmrankers_side.py``); same model, candidates,
  k, num_child and truncation (query 32, passage 128 tokens: llm-rankers' run.py defaults). With ``--vllm
  PYTHON`` (``.venv-vllm/bin/python`` from scripts/setup-vllm) the same rerankers also run on the vLLM backend
  (``dtype="auto"``, compiled) in a worker process (``speed_vllm.py``), as one more interleaved arm.
- (c) the floor of each rerankkit arm: the model calls it made (the top-level ``forward`` / ``generate`` calls
  of the transformers model, with the very tensors it built), recorded during the timed run and replayed on
  the raw model right after it; the ratio arm / floor is everything that is not the model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from pairwise_common import load_dl19, ndcg10  # noqa: E402

from rerankkit.types import Run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIDE = ROOT / "tests" / "reference" / "llmrankers_side.py"
QUERY_TOKENS, PASSAGE_TOKENS = 32, 128  # llm-rankers' run.py defaults (--query_length, --passage_length)
B_CASES = [  # name, rerankkit preset, method (rerankkit), llm-rankers ranker, its method name
    ("PRP heapsort", "prp-smollm2-135m", "heapsort", "pairwise", "heapsort"),
    ("PRP sliding-10", "prp-smollm2-135m", "sliding", "pairwise", "bubblesort"),
    ("setwise heapsort", "setwise-smollm2-135m", "heapsort", "setwise", "heapsort"),
]


# -- the forward-pass floor --------------------------------------------------------------------------
class ModelCalls:
    """Records the top-level calls an hf backend makes to its transformers model (``forward`` with the tensors
    it built; ``generate`` with its arguments) while ``active``, and replays them on the raw model."""

    def __init__(self, model: Any, torch: Any):
        self.model, self.torch = model, torch
        self.calls: list[tuple[str, tuple, dict]] = []
        self.active = False
        self._in_generate = False
        model.register_forward_pre_hook(self._hook, with_kwargs=True)
        self._generate = getattr(model, "generate", None)  # encoders have none
        if self._generate is not None:
            model.generate = self._record_generate  # an instance attribute: the backend calls model.generate(...)

    def _hook(self, module: Any, args: tuple, kwargs: dict) -> None:
        if self.active and not self._in_generate:
            kwargs = dict(kwargs)
            for key in ("cache", "past_key_values"):  # the prefix cache's past: the forward extends it in place
                if kwargs.get(key) is not None:
                    kwargs[key] = _CacheSnapshot(kwargs[key])
            self.calls.append(("forward", args, kwargs))

    def _record_generate(self, *args: Any, **kwargs: Any) -> Any:
        if self.active:
            self.calls.append(("generate", args, dict(kwargs)))
        self._in_generate = True
        try:
            return self._generate(*args, **kwargs)
        finally:
            self._in_generate = False

    def take(self) -> list[tuple[str, tuple, dict]]:
        calls, self.calls = self.calls, []
        return calls

    def replay(self, calls: list[tuple[str, tuple, dict]]) -> float:
        """Seconds the raw model takes for ``calls``."""
        t0 = time.perf_counter()
        with self.torch.inference_mode():
            for kind, args, kwargs in calls:
                kwargs = {k: v.fresh() if isinstance(v, _CacheSnapshot) else v for k, v in kwargs.items()}
                (self._generate if kind == "generate" else self.model)(*args, **kwargs)
        return time.perf_counter() - t0


class _CacheSnapshot:
    """A KV cache as a forward received it (the forward extends the object it gets): rebuilt for each replay."""

    def __init__(self, cache: Any):
        layers = cache.layers if hasattr(cache, "layers") else []
        self.layers = [(layer.keys.clone(), layer.values.clone()) for layer in layers
                       if getattr(layer, "keys", None) is not None]

    def fresh(self) -> Any:
        from transformers import DynamicCache

        cache = DynamicCache()
        for i, (k, v) in enumerate(self.layers):
            cache.update(k, v, i)
        return cache


class Arm:
    """One rerankkit configuration: a Reranker on a (shared) backend whose model calls are recorded."""

    def __init__(self, reranker: Any, calls: ModelCalls | None):
        self.reranker, self.calls = reranker, calls
        self.rows: list[dict] = []

    def run(self, query: Any, docs: list, floor: bool) -> dict:
        backend = self.reranker.backend
        inner = backend
        while hasattr(inner, "inner"):
            inner = inner.inner
        if getattr(inner, "prefix", None) is not None:  # arms share backends: each query starts from an empty
            inner.prefix.clear()                          # prefix cache, as a first rerank of that query would
        u0 = backend.usage.snapshot()
        if self.calls is not None:
            self.calls.take()
            self.calls.active = True
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            ranking = self.reranker.rerank_many([(query, docs)])[0]
        finally:
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            if self.calls is not None:
                self.calls.active = False
        u1 = backend.usage.snapshot()
        row = {"qid": query.qid, "wall_s": wall, "cpu_s": cpu, "ranking": ranking.docids,
               "prompts": u1["model_calls"] - u0["model_calls"], "backend_calls": u1["batches"] - u0["batches"],
               "prompt_tokens": u1["prompt_tokens"] - u0["prompt_tokens"]}
        if self.calls is not None:
            recorded = self.calls.take()
            row["model_calls"] = len(recorded)
            if floor:
                row["floor_s"] = self.calls.replay(recorded)
        self.rows.append(row)
        self._ranking = ranking
        return row


class Backends:
    """One backend per (backend, model, options), shared by the presets that name the same, each recorded."""

    def __init__(self, torch: Any):
        self.torch = torch
        self.made: dict[str, tuple[Any, ModelCalls | None]] = {}

    def get(self, spec: Any, dtype: str | None, **extra: Any) -> tuple[Any, ModelCalls | None]:
        from rerankkit.backends import create_backend

        options = dict(spec.backend_options)
        if dtype is not None:
            options["dtype"] = dtype
        if spec.backend == "hf":
            options.update(extra)
        key = json.dumps([spec.backend, spec.model, options], sort_keys=True, default=str)
        if key not in self.made:
            backend = create_backend(spec.backend, spec.model, **options)
            model = getattr(backend, "model", None)
            self.made[key] = (backend, ModelCalls(model, self.torch) if model is not None else None)
        return self.made[key]


def reranker(name: str, backends: Backends, dtype: str | None, backend_options: dict | None = None,
             **params: Any) -> tuple[Any, dict]:
    """A Reranker of preset ``name`` on a shared backend (``backend_options``: extra hf options); ``params`` the
    strategy does not declare (on this version) are dropped and reported in the second value."""
    import dataclasses

    from rerankkit.presets import RERANKER_PRESETS
    from rerankkit.reranker import Reranker
    from rerankkit.strategies import STRATEGIES

    spec = RERANKER_PRESETS.get(name)
    backend, calls = backends.get(spec, dtype, **(backend_options or {}))
    declared = {f.name for f in dataclasses.fields(STRATEGIES.get(spec.strategy).Params)}
    dropped = {k: params.pop(k) for k in list(params) if k not in declared}
    return Arm(Reranker(name, backend_instance=backend, **params), calls), dropped


def offline_presets() -> list[str]:
    from rerankkit.presets import RERANKER_PRESETS

    return [n for n in RERANKER_PRESETS.names() if str(RERANKER_PRESETS.get(n).model).startswith("packaged:")]


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    out = {"queries": n, "s_per_query": sum(r["wall_s"] for r in rows) / n,
           "median_s": statistics.median(r["wall_s"] for r in rows),
           "cpu_s_per_query": sum(r["cpu_s"] for r in rows) / n}
    for key in ("prompts", "backend_calls", "model_calls", "compares"):
        if key in rows[0]:
            out[f"{key}_per_query"] = sum(r[key] for r in rows) / n
    if "floor_s" in rows[0]:
        out["floor_s_per_query"] = sum(r["floor_s"] for r in rows) / n
        out["over_floor"] = out["s_per_query"] / out["floor_s_per_query"]
    return out


def ndcg_of(rows: list[dict], items: list, qrels: dict) -> float:
    from rerankkit.types import Ranking

    by_q = {q.qid: (q, docs) for q, docs in items}
    rankings = []
    for r in rows:
        q, docs = by_q[r["qid"]]
        by_id = {d.docid: d for d in docs}
        order = [by_id[d] for d in r["ranking"]]
        rankings.append(Ranking.from_order(q, order, list(range(len(order)))))
    return ndcg10(Run(rankings), qrels)


# -- table (a) ----------------------------------------------------------------------------------------
def table_a(items: list, qrels: dict, presets: list[str], torch: Any, warm: tuple) -> dict:
    backends = Backends(torch)
    arms: dict[tuple[str, str], Arm] = {}
    resolved: dict[str, str] = {}
    for p in presets:
        for arm, dtype in (("auto", None), ("fp32", "fp32")):  # fp32: as before issue 22, no prefix cache either
            arms[p, arm], _ = reranker(p, backends, dtype, {"prefix_cache": False} if arm == "fp32" else None)
            resolved[f"{p}/{arm}"] = getattr(arms[p, arm].reranker.backend, "dtype_name", "?")
    torch.set_num_threads(ARGS.threads)
    for a in arms.values():  # warm-up, untimed: first-call costs (kernels, caches) are not per query
        a.run(*warm, floor=False)
        a.rows.clear()
    for i, (q, docs) in enumerate(items):
        for p in presets:
            order = ("auto", "fp32") if i % 2 == 0 else ("fp32", "auto")
            for arm in order:
                row = arms[p, arm].run(q, docs, floor=True)
                print(f"(a) q{i + 1}/{len(items)} {p:24} {arm:4} {row['wall_s']:7.2f} s  floor {row.get('floor_s', 0):6.2f} s",
                      flush=True)
    out = {"resolved_dtype": resolved, "presets": {}}
    for p in presets:
        entry = {}
        for arm in ("auto", "fp32"):
            rows = arms[p, arm].rows
            entry[arm] = {"summary": summary(rows), "ndcg10": ndcg_of(rows, items, qrels), "rows": rows}
        entry["speedup"] = entry["fp32"]["summary"]["s_per_query"] / entry["auto"]["summary"]["s_per_query"]
        entry["same_rankings"] = sum(a["ranking"] == b["ranking"] for a, b in zip(entry["auto"]["rows"],
                                                                                   entry["fp32"]["rows"]))
        out["presets"][p] = entry
    return out


# -- table (b) ----------------------------------------------------------------------------------------
def llmrankers_missing() -> str:
    if not SIDE.exists():
        return (f"{SIDE.relative_to(ROOT)} is not on this branch (it comes with the reference tier, branch "
                "fid-pairwise): table (b) skipped")
    if importlib.util.find_spec("llmrankers") is None:
        return "llm-rankers is not installed (pip install -e '.[reference]', as scripts/setup does): table (b) skipped"
    return ""


class Worker:
    """A worker process (``speed_llmrankers.py``, ``speed_vllm.py``): one request a line, one answer a line; the
    first request configures it and its answer says it is ready."""

    def __init__(self, script: str, first: dict, python: str = sys.executable):
        self.err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
        self.name = script
        self.proc = subprocess.Popen([python, str(Path(__file__).parent / script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)
        self.ready = self.ask(first)

    def ask(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.err.seek(0)
            raise RuntimeError(f"{self.name} worker failed:\n{self.err.read()[-4000:]}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        self.err.close()


def llmrankers_worker(model_dir: str, threads: int) -> Worker:
    """llm-rankers, unmodified, in fp32 and cast to bf16 (speed_llmrankers.py)."""
    return Worker("speed_llmrankers.py", {"model": model_dir, "threads": threads, "query_length": QUERY_TOKENS,
                                          "passage_length": PASSAGE_TOKENS})


def table_b(items: list, qrels: dict, torch: Any, warm: tuple) -> dict:
    from rerankkit.models import materialize_gguf, packaged_path

    backends = Backends(torch)
    smol = packaged_path("smollm2-135m-instruct")
    worker = llmrankers_worker(str(materialize_gguf(str(smol.parent), smol.name)), ARGS.threads)
    torch.set_num_threads(ARGS.threads)
    cases = []
    for name, preset, method, ranker, ref_method in B_CASES:
        arm, dropped = reranker(preset, backends, None, method=method, ties="incumbent",
                                max_query_tokens=QUERY_TOKENS)
        plain, _ = reranker(preset, backends, None, {"prefix_cache": False}, method=method, ties="incumbent",
                            max_query_tokens=QUERY_TOKENS)
        p = arm.reranker.strategy.params
        if getattr(p, "max_doc_tokens", None) != PASSAGE_TOKENS:
            raise SystemExit(f"{preset}: max_doc_tokens {getattr(p, 'max_doc_tokens', None)} != {PASSAGE_TOKENS}")
        req = {"ranker": ranker, "method": ref_method, "k": p.k, "num_child": getattr(p, "num_child", 0)}
        overrides = {k: v for k, v in {"method": method, "ties": "incumbent", "max_query_tokens": QUERY_TOKENS}.items()
                     if k not in dropped}
        cases.append({"name": name, "preset": preset, "arm": arm, "plain": plain, "req": req, "dropped": dropped,
                      "overrides": overrides, "vllm": [],
                      "params": {k: getattr(p, k) for k in ("method", "k", "mode", "num_child", "max_doc_tokens",
                                                              "ties", "max_query_tokens", "parallel")
                                 if hasattr(p, k)},
                      "ref": {"fp32": [], "bf16": []}})

    vllm = None
    if ARGS.vllm:  # rerankkit's same rerankers on the vLLM backend (dtype auto), in .venv-vllm's python
        vllm = Worker("speed_vllm.py", {"threads": ARGS.threads, "kv_cache_gb": 1.0, "dtype": "auto",
                                        "cases": [{"name": c["name"], "preset": c["preset"], "params": c["overrides"]}
                                                  for c in cases]}, python=ARGS.vllm)
        print(f"(b) vLLM worker ready: {vllm.ready}", flush=True)

    def on_vllm(case: dict, q: Any, docs: list) -> dict:
        return vllm.ask({"case": case["name"], "qid": q.qid, "query": q.text,
                         "docs": [[d.docid, d.text, d.title] for d in docs]})

    def ref(case: dict, dtype: str, q: Any, docs: list) -> dict:
        ans = worker.ask({**case["req"], "dtype": dtype, "query": q.text,
                          "docs": [[d.docid, d.prompt_text()] for d in docs]})
        return {"qid": q.qid, **ans}

    for c in cases:  # warm-up, untimed
        for a in (c["arm"], c["plain"]):
            a.run(*warm, floor=False)
            a.rows.clear()
        for dtype in ("fp32", "bf16"):
            ref(c, dtype, *warm)
        if vllm is not None:
            on_vllm(c, *warm)
    arms = ("rerankkit", "fp32", "bf16", "plain") + (("vllm",) if vllm is not None else ())
    for i, (q, docs) in enumerate(items):
        for c in cases:
            for arm in arms[i % len(arms):] + arms[: i % len(arms)]:  # rotate the order query by query
                if arm == "rerankkit":
                    row = c["arm"].run(q, docs, floor=True)
                elif arm == "plain":  # rerankkit without the prefix cache: what the cache itself gains
                    row = c["plain"].run(q, docs, floor=False)
                elif arm == "vllm":
                    row = on_vllm(c, q, docs)
                    c["vllm"].append(row)
                else:
                    row = ref(c, arm, q, docs)
                    c["ref"][arm].append(row)
                print(f"(b) q{i + 1}/{len(items)} {c['name']:18} {arm:9} {row['wall_s']:7.2f} s", flush=True)
    worker.close()
    out = {"llmrankers_dtypes": worker.ready.get("dtypes"), "cases": {}}
    if vllm is not None:
        vllm.close()
        out["vllm"] = vllm.ready
    for c in cases:
        rk = c["arm"].rows
        entry = {"preset": c["preset"], "rerankkit_params": c["params"], "not_declared_here": c["dropped"],
                 "llmrankers_params": c["req"],
                 "rerankkit": {"summary": summary(rk), "ndcg10": ndcg_of(rk, items, qrels), "rows": rk}}
        pl = c["plain"].rows
        entry["rerankkit_no_prefix_cache"] = {"summary": summary(pl), "ndcg10": ndcg_of(pl, items, qrels), "rows": pl}
        entry["prefix_cache_speedup"] = summary(pl)["s_per_query"] / entry["rerankkit"]["summary"]["s_per_query"]
        entry["same_rankings_as_no_prefix_cache"] = sum(a["ranking"] == b["ranking"] for a, b in zip(rk, pl))
        for dtype in ("fp32", "bf16"):
            rows = c["ref"][dtype]
            entry[f"llmrankers_{dtype}"] = {"summary": summary(rows), "ndcg10": ndcg_of(rows, items, qrels),
                                            "rows": rows}
            entry[f"speedup_vs_{dtype}"] = (entry[f"llmrankers_{dtype}"]["summary"]["s_per_query"]
                                            / entry["rerankkit"]["summary"]["s_per_query"])
        if vllm is not None:
            vr = c["vllm"]
            entry["rerankkit_vllm"] = {"summary": summary(vr), "ndcg10": ndcg_of(vr, items, qrels), "rows": vr}
            for dtype in ("fp32", "bf16"):
                entry[f"vllm_speedup_vs_{dtype}"] = (entry[f"llmrankers_{dtype}"]["summary"]["s_per_query"]
                                                     / entry["rerankkit_vllm"]["summary"]["s_per_query"])
            entry["vllm_same_rankings_as_rerankkit"] = sum(a["ranking"] == b["ranking"] for a, b in zip(vr, rk))
        out["cases"][c["name"]] = entry
    return out


# -- markdown -----------------------------------------------------------------------------------------
def md_a(res: dict, meta: dict) -> str:
    lines = [f"Run: {meta['queries']} DL19 queries x BM25 top-{meta['depth']}, {meta['threads']} torch thread(s), "
             f"{meta['date']}, load average at start {meta['loadavg']}. `auto` resolved to: "
             + ", ".join(sorted({v for k, v in res['resolved_dtype'].items() if k.endswith('/auto')})) + ".", "",
             "| preset | s/query before (fp32, no prefix cache) | s/query after (auto) | speed-up | floor fp32 | over floor fp32 "
             "| floor auto | over floor auto | nDCG@10 fp32 | nDCG@10 auto | same rankings | prompts/query |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, e in res["presets"].items():
        a, f = e["auto"]["summary"], e["fp32"]["summary"]
        lines.append(f"| {p} | {f['s_per_query']:.2f} | {a['s_per_query']:.2f} | {e['speedup']:.2f}x "
                     f"| {f.get('floor_s_per_query', float('nan')):.2f} | {f.get('over_floor', float('nan')):.2f}x "
                     f"| {a.get('floor_s_per_query', float('nan')):.2f} | {a.get('over_floor', float('nan')):.2f}x "
                     f"| {e['fp32']['ndcg10']:.4f} | {e['auto']['ndcg10']:.4f} | {e['same_rankings']}/{a['queries']} "
                     f"| {a.get('prompts_per_query', 0):.1f} |")
    return "\n".join(lines)


def md_b(res: dict, meta: dict) -> str:
    if "skipped" in res:
        return f"Not run: {res['skipped']}."
    lines = [f"Run: {meta['queries']} DL19 queries x BM25 top-{meta['depth']}, {meta['threads']} torch thread(s), "
             f"{meta['date']}, load average at start {meta['loadavg']}. llm-rankers: {res['llmrankers_dtypes']}.", "",
             "| case | rerankkit s/query | llm-rankers fp32 | llm-rankers bf16 | vs fp32 (target >= 2x) "
             "| vs bf16 (target >= 1.3x) | rerankkit floor | over floor | nDCG@10 rerankkit / fp32 / bf16 "
             "| prompts/query rerankkit | compares/query llm-rankers "
             "| rerankkit without prefix cache s/query (its gain, same rankings) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in res["cases"].items():
        r, f32, b16 = e["rerankkit"]["summary"], e["llmrankers_fp32"]["summary"], e["llmrankers_bf16"]["summary"]
        lines.append(f"| {name} | {r['s_per_query']:.2f} | {f32['s_per_query']:.2f} | {b16['s_per_query']:.2f} "
                     f"| {e['speedup_vs_fp32']:.2f}x | {e['speedup_vs_bf16']:.2f}x | {r['floor_s_per_query']:.2f} "
                     f"| {r['over_floor']:.2f}x | {e['rerankkit']['ndcg10']:.4f} / {e['llmrankers_fp32']['ndcg10']:.4f}"
                     f" / {e['llmrankers_bf16']['ndcg10']:.4f} | {r.get('prompts_per_query', 0):.1f} "
                     f"| {f32.get('compares_per_query', 0):.1f} "
                     f"| {e['rerankkit_no_prefix_cache']['summary']['s_per_query']:.2f} ({e['prefix_cache_speedup']:.2f}x, "
                     f"{e['same_rankings_as_no_prefix_cache']}/{r['queries']}) |")
    if "vllm" in res:
        v = res["vllm"]
        lines += ["", f"The same rerankers on the vLLM backend ({v.get('engine')}, dtype auto = {v.get('dtype')}, "
                  f"compiled; engine start {v.get('start_s', 0):.0f} s, not in the times), interleaved with the arms "
                  "above, vLLM's prefix cache emptied before each query:", "",
                  "| case | rerankkit on vLLM s/query | vs llm-rankers fp32 (target >= 2x) "
                  "| vs llm-rankers bf16 (target >= 1.3x) | vs rerankkit on hf | nDCG@10 | prompts/query "
                  "| rankings as rerankkit on hf |", "|---|---|---|---|---|---|---|---|"]
        for name, e in res["cases"].items():
            vs, r = e["rerankkit_vllm"]["summary"], e["rerankkit"]["summary"]
            lines.append(f"| {name} | {vs['s_per_query']:.2f} | {e['vllm_speedup_vs_fp32']:.2f}x "
                         f"| {e['vllm_speedup_vs_bf16']:.2f}x | {r['s_per_query'] / vs['s_per_query']:.2f}x "
                         f"| {e['rerankkit_vllm']['ndcg10']:.4f} | {vs.get('prompts_per_query', 0):.1f} "
                         f"| {e['vllm_same_rankings_as_rerankkit']}/{vs['queries']} |")
    params = {n: (e["rerankkit_params"], e["not_declared_here"]) for n, e in res["cases"].items()}
    lines += ["", "rerankkit parameters (and overrides this version did not declare): "
              + "; ".join(f"{n}: {p} {d or ''}" for n, (p, d) in params.items())]
    return "\n".join(lines)


def write_md(path: Path, table: str, text: str) -> None:
    start, end = f"<!-- speed:{table} -->", f"<!-- /speed:{table} -->"
    doc = path.read_text() if path.exists() else ""
    if start in doc and end in doc:
        doc = doc[: doc.index(start) + len(start)] + "\n" + text + "\n" + doc[doc.index(end):]
    else:
        doc += f"\n{start}\n{text}\n{end}\n"
    path.write_text(doc)


ARGS: Any = None


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every process")
    ap.add_argument("--tables", default="a,b", help="a (with its floors), b (with rerankkit's floor), or a,b")
    ap.add_argument("--presets", default="", help="comma-separated; default: every offline preset")
    ap.add_argument("--out", default="eval/results/speed.json")
    ap.add_argument("--md", default="eval/speed.md", help="markdown file whose speed:a / speed:b blocks are rewritten")
    ap.add_argument("--vllm", default="", metavar="PYTHON",
                    help="table (b) adds rerankkit on the vLLM backend, run by this python (.venv-vllm/bin/python, "
                         "from scripts/setup-vllm)")
    ARGS = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(ARGS.threads)
    run, qrels = load_dl19(ARGS.depth, queries=ARGS.queries)
    items = [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]
    warm_run, _ = load_dl19(5, queries=ARGS.queries + 1)
    warm_q = list(warm_run.values())[-1]
    warm = (warm_q.query, [sd.doc for sd in warm_q.docs])  # a query outside the measured ones, 5 documents
    out_path = Path(ARGS.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    for table in [t for t in ARGS.tables.split(",") if t]:
        meta = {"queries": len(items), "depth": ARGS.depth, "threads": ARGS.threads,
                "date": time.strftime("%Y-%m-%d %H:%M"), "loadavg": os.getloadavg()[0],
                "torch": torch.__version__, "command": " ".join(sys.argv)}
        t0 = time.perf_counter()
        if table == "a":
            presets = [p for p in ARGS.presets.split(",") if p] or offline_presets()
            res = table_a(items, qrels, presets, torch, warm)
            text = md_a(res, meta)
        elif table == "b":
            missing = llmrankers_missing()
            if missing:
                print(missing, flush=True)
                res = {"skipped": missing}
            else:
                res = table_b(items, qrels, torch, warm)
            text = md_b(res, meta)
        else:
            raise SystemExit(f"unknown table {table!r}")
        meta["wall_s"] = round(time.perf_counter() - t0, 1)
        result[table] = {"meta": meta, **res}
        out_path.write_text(json.dumps(result, indent=1))
        write_md(Path(ARGS.md), table, text)
        print(text, flush=True)


if __name__ == "__main__":
    main()
