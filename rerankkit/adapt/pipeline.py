"""``rerankkit adapt``: sample documents of the target collection, generate a query for each, label candidates
(DUQGen or a teacher), and fine-tune the reranker with LoRA through :func:`rerankkit.train.train`.

Every stage writes its result into ``output_dir`` and a rerun reuses it (embeddings and the sample by a key of
their inputs; generated answers through the answer cache; training from its last checkpoint), so an
interrupted run resumes. ``adapt.json`` records exactly what the adapter was trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ConfigError
from ..types import Query
from .collection import (
    Collection,
    check_query_overlap,
    judged_overlap,
    load_collection,
    load_eval_set,
    normalize_query,
)
from .config import AdaptConfig
from .labels import duqgen_data, teacher_data, teacher_ranking, training_documents
from .querygen import FewShot, Generated, load_generation_template, read_fewshot_file, template_examples

log = logging.getLogger(__name__)


def check_config(cfg: AdaptConfig) -> dict[str, Any]:
    """Everything that can be checked without loading a model: the training preset and its overrides, the
    generation template, few-shot file and backend options, the retrievers and the teacher preset."""
    from ..backends import backend_class
    from ..backends.base import check_options
    from ..reranker import Reranker
    from ..retrievers import resolve_retriever_spec
    from ..train.features import training_objective
    from ..train.trainer import training_reranker

    student = training_reranker(cfg.train)
    objective = training_objective(cfg.train, student.strategy)
    if cfg.teacher.active is False and cfg.train.pointwise_loss == "ranknet" and objective == "pointwise":
        raise ConfigError("train.pointwise_loss 'ranknet' learns a teacher's order: configure a teacher, or use "
                          "'contrastive' (DUQGen labels: the generating document is the positive)")
    out: dict[str, Any] = {"objective": objective}
    if not cfg.generation.queries_file:
        load_generation_template(cfg.generation.template)
        if cfg.generation.fewshot_file:
            read_fewshot_file(cfg.generation.fewshot_file)
        check_options(backend_class(cfg.generation.backend), cfg.generation.options)
        spec, engine_cls, _ = resolve_retriever_spec(cfg.sampling.embedder, cfg.sampling.embedder_overrides)
        if not hasattr(engine_cls, "encode"):
            raise ConfigError(f"sampling.embedder {cfg.sampling.embedder!r} uses engine {spec.engine!r}, which "
                              f"does not embed texts; use a dense retriever preset (e.g. dense-minilm)")
    resolve_retriever_spec(cfg.negatives.retriever, cfg.negatives.retriever_overrides)
    if cfg.teacher.preset:
        Reranker(cfg.teacher.preset, **cfg.teacher.overrides)  # checks every key; loads nothing
    return out


def adapt(cfg: AdaptConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage of ``cfg``; return the record written to ``output_dir/adapt.json``."""
    checked = check_config(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    record: dict[str, Any] = {"rerankkit": __version__, "seed": cfg.seed, "config": _jsonable(cfg),
                              "objective": checked["objective"], "mode": "distill" if cfg.teacher.active else "duqgen"}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        times[name] = round(time.perf_counter() - t0, 1)
        log.info("adapt: %s done in %.1f s", name, times[name])
        return result

    evals = stage("eval_data", lambda: load_eval_set(cfg.eval_names, cfg.eval_split))
    coll, everything = stage("collection", lambda: load_collection(
        cfg.corpus.datasets, cfg.corpus.candidates, cfg.corpus.min_chars, cfg.corpus.max_docs))
    record["collection"] = {"datasets": list(cfg.corpus.datasets), "sources": coll.sources,
                            "documents": len(everything), "sampleable": len(coll.docs),
                            "shorter_than_min_chars": coll.dropped_short, "fingerprint": coll.fingerprint}
    record["eval"] = {"datasets": cfg.eval_names, "split": cfg.eval_split,
                      "queries": {k: len(v) for k, v in evals.queries.items()}}

    if cfg.generation.queries_file:
        generated = _read_queries_file(cfg.generation.queries_file, {d.docid for d in everything})
        record["queries_from"] = str(Path(cfg.generation.queries_file).resolve())
    else:
        examples = _examples(cfg)
        check_query_overlap([Query(f"fewshot{i}", ex.query) for i, ex in enumerate(examples)], evals,
                            cfg.eval_split)
        emb = stage("embed", lambda: _embeddings(cfg, coll, out, progress))
        sample = stage("sample", lambda: _sample(cfg, coll, emb, out))
        record["sampling"] = {"documents": len(sample), "file": str(out / "sampled.jsonl"),
                              "clusters": cfg.sampling.clusters, "kmeans": sample[0]["kmeans"] if sample else ""}
        docs = [coll.by_id[s["docid"]] for s in sample]
        generated = stage("generate", lambda: _generate(cfg, docs, examples, out, progress))
        record["generation"] = {"template": cfg.generation.template, "model": cfg.generation.model,
                                "backend": cfg.generation.backend, "fewshot": [dataclasses.asdict(e) for e in examples],
                                "cache": str(_answer_cache(cfg))}
    shots = [] if cfg.generation.queries_file else examples
    verdicts = screen_queries(generated, shots)
    _write_jsonl(out / "queries.jsonl", [{"qid": f"gen{i}", "docid": g.docid, "query": g.query, "raw": g.raw,
                                          "use": v} for i, (g, v) in enumerate(zip(generated, verdicts))])
    queries = [Query(f"gen{i}", g.query) for i, (g, v) in enumerate(zip(generated, verdicts)) if v == "ok"]
    source = {f"gen{i}": g.docid for i, (g, v) in enumerate(zip(generated, verdicts)) if v == "ok"}
    record["queries"] = {"file": str(out / "queries.jsonl"), "generated": len(generated), "usable": len(queries),
                         **{f"dropped_{k}": verdicts.count(k) for k in ("empty", "fewshot_copy", "duplicate")}}
    if not queries:
        raise ConfigError("no usable query was generated (see queries.jsonl's raw answers)")
    check_query_overlap(queries, evals, cfg.eval_split)

    depth = max(cfg.negatives.depth, cfg.teacher.depth if cfg.teacher.active else 0, cfg.train.holdout_depth)
    first_stage = stage("first_stage", lambda: _first_stage(cfg, everything, queries, depth))
    _write_candidates(out / "candidates.run", first_stage)
    corpus = {d.docid: d for d in everything}
    eval_qids = evals.all_qids()
    if cfg.teacher.active:
        cache = cfg.teacher.cache or (str(out / "teacher-answers.sqlite") if cfg.teacher.preset else None)
        ranking = stage("teacher", lambda: teacher_ranking(queries, first_stage, cfg.teacher, corpus, cache,
                                                           progress))
        _write_candidates(out / "teacher.run", ranking)
        data = teacher_data(queries, ranking, first_stage, corpus, cfg.teacher, eval_qids)
        record["teacher"] = {"preset": cfg.teacher.preset, "run": cfg.teacher.run, "cache": cache,
                             "depth": cfg.teacher.depth, "file": str(out / "teacher.run")}
    else:
        data = duqgen_data(queries, source, first_stage, corpus, cfg.negatives, eval_qids)
    docs_used = training_documents(data)
    judged = judged_overlap(docs_used, evals)
    record["eval_overlap"] = {"queries": 0, "training_documents": len(docs_used),
                              "judged_for_eval_queries": judged, "eval_documents": cfg.eval_documents}
    if cfg.eval_documents == "refuse" and any(judged.values()):
        raise ConfigError(f"{sum(judged.values())} training documents are judged for {cfg.eval_split} queries "
                          f"({', '.join(f'{k}: {v}' for k, v in judged.items() if v)}); refusing "
                          f"(eval_documents: refuse)")
    (out / "adapt.json").write_text(json.dumps({**record, "times_s": times, "status": "training"}, indent=2))

    from ..train import train

    summary = stage("train", lambda: train(cfg.train, progress=progress, data=data))
    preset_file = write_preset(cfg, Path(summary["adapter"]))
    record.update(train=summary, preset={"name": cfg.preset_name, "file": str(preset_file)}, times_s=times,
                  status="done")
    (out / "adapt.json").write_text(json.dumps(record, indent=2))
    return record


def screen_queries(generated: list[Generated], examples: list[FewShot]) -> list[str]:
    """Per generated query: ``ok``, or why it is not trained on: ``empty`` (nothing usable was generated),
    ``fewshot_copy`` (the text of a few-shot query: small models copy the last example), ``duplicate`` (the
    same text as an earlier query; the first one is kept)."""
    shots = {normalize_query(e.query) for e in examples}
    seen: set[str] = set()
    out = []
    for g in generated:
        key = normalize_query(g.query)
        if not key:
            out.append("empty")
        elif key in shots:
            out.append("fewshot_copy")
        elif key in seen:
            out.append("duplicate")
        else:
            out.append("ok")
            seen.add(key)
    return out


def _examples(cfg: AdaptConfig) -> list[FewShot]:
    if cfg.generation.fewshot_file:
        return read_fewshot_file(cfg.generation.fewshot_file)
    return template_examples(load_generation_template(cfg.generation.template))


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _embeddings(cfg: AdaptConfig, coll: Collection, out: Path, progress: bool) -> np.ndarray:
    """Document embeddings (rows in ``coll.docs`` order), reused from ``out`` when the inputs are the same."""
    from ..retrievers import Retriever

    key = _key(coll.fingerprint, cfg.sampling.embedder, cfg.sampling.embedder_overrides)
    npy, meta = out / "embeddings.npy", out / "embeddings.json"
    if npy.exists() and meta.exists() and json.loads(meta.read_text()).get("key") == key:
        return np.load(npy)
    retriever = Retriever(cfg.sampling.embedder, **cfg.sampling.embedder_overrides)
    engine: Any = retriever.engine
    texts = [engine.p.passage_prefix + engine.index_text(d) for d in coll.docs]
    emb = np.asarray(engine.encode(texts, progress), dtype=np.float32)
    np.save(npy, emb)
    meta.write_text(json.dumps({"key": key, "embedder": cfg.sampling.embedder, "rows": len(texts)}))
    return emb


def _sample(cfg: AdaptConfig, coll: Collection, emb: np.ndarray, out: Path) -> list[dict[str, Any]]:
    """The sampled documents (``sampled.jsonl``), reused when the inputs are the same."""
    from .cluster import kmeans
    from .sampling import sample_documents

    s = cfg.sampling
    key = _key(coll.fingerprint, cfg.sampling.embedder, cfg.sampling.embedder_overrides, dataclasses.asdict(s),
               cfg.seed)
    path = out / "sampled.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows and all(r.get("key") == key for r in rows):
            return rows
    clusters = kmeans(emb, s.clusters, cfg.seed, s.iterations, s.kmeans)
    picked = sample_documents(emb, clusters, s.documents, cfg.seed, s.temperature, s.rounds, s.mmr_lambda)
    sizes = clusters.sizes()
    rows = [{"docid": coll.docs[p.row].docid, "cluster": p.cluster, "cluster_size": int(sizes[p.cluster]),
             "centroid_cosine": round(p.centroid_cosine, 6), "kmeans": clusters.engine, "key": key} for p in picked]
    _write_jsonl(path, rows)
    return rows


def _answer_cache(cfg: AdaptConfig) -> Path:
    return Path(cfg.generation.cache) if cfg.generation.cache else Path(cfg.output_dir) / "answers.sqlite"


def _generate(cfg: AdaptConfig, docs: list[Any], examples: list[FewShot], out: Path,
              progress: bool) -> list[Generated]:
    from ..backends import create_backend
    from ..backends.base import Sampling
    from ..backends.cached import CachedBackend
    from .querygen import QueryGenerator

    g = cfg.generation
    backend = CachedBackend(create_backend(g.backend, g.model, **g.options), _answer_cache(cfg))
    sampling = Sampling(temperature=g.temperature, seed=cfg.seed) if g.temperature > 0 else None
    try:
        gen = QueryGenerator(load_generation_template(g.template), examples, backend, g.max_new_tokens,
                             g.max_doc_tokens, sampling, g.fewshot_doc_tokens)
        from tqdm.auto import tqdm

        with tqdm(total=len(docs), disable=not progress, desc="generate", unit="doc") as bar:
            result = gen.generate(docs, g.batch, on_batch=bar.update)
        log.info("generation: %s", backend.stats())
        return result
    finally:
        backend.close()


def _read_queries_file(path: str, docids: set[str]) -> list[Generated]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            docid, query = str(r["docid"]), str(r["query"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path}:{n}: expected a JSON object with 'docid' and 'query'") from None
        if docid not in docids:
            raise ConfigError(f"{path}:{n}: document {docid!r} is not in the collection")
        rows.append(Generated(docid, " ".join(query.split()), str(r.get("raw", query))))
    return rows


def _first_stage(cfg: AdaptConfig, docs: list[Any], queries: list[Query], depth: int) -> Any:
    from ..retrievers import Retriever

    retriever = Retriever(cfg.negatives.retriever, **cfg.negatives.retriever_overrides)
    try:
        retriever.index(docs)
        return retriever.search(queries, k=depth)
    finally:
        retriever.close()


def write_preset(cfg: AdaptConfig, adapter: Path) -> Path:
    """``output_dir/preset.toml``: the trained preset with ``adapter=`` set, loadable by name once registered
    (``--presets FILE``, ``$RERANKKIT_PRESETS``)."""
    import tomli_w

    from ..reranker import Reranker

    # the preset as trained (overrides, document budget), at the preset's own inference dtype
    spec = Reranker(cfg.train.preset, **{"max_doc_tokens": cfg.train.max_doc_tokens, **cfg.train.overrides}).spec
    opts = dict(spec.backend_options)
    opts["adapter"] = str(adapter.resolve())
    what = "distilled from " + (cfg.teacher.preset or f"the run {cfg.teacher.run}") if cfg.teacher.active \
        else "DUQGen-adapted"
    spec = spec.replace(name=cfg.preset_name, backend_options=opts,
                        description=f"{spec.description} LoRA {what} on {', '.join(cfg.corpus.datasets)} "
                                    f"(rerankkit adapt, seed {cfg.seed}; see {Path(cfg.output_dir) / 'adapt.json'}).")
    table = spec.to_dict()
    table.pop("name", None)
    path = Path(cfg.output_dir) / "preset.toml"
    path.write_text(tomli_w.dumps({cfg.preset_name: _drop_none(table)}), encoding="utf-8")
    return path


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _write_candidates(path: Path, run: Any) -> None:
    from ..data import write_run

    write_run(run, path)


def _jsonable(cfg: AdaptConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
