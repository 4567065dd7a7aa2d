"""A robustness study: one reranker under K prompt formats and M shuffles of its input order.

The formats are sampled from the grammar of :mod:`rerankkit.prompts.formats` (the template as written is
format 0) and written as template files (``OUT/formats/F03-<hash>.yaml``), so every run's spec names the exact
template it used and any format can be rerun with ``--set template=PATH``. The orders are seeded shuffles of
each query's first ``depth`` candidates (order 0: the first-stage order). By default formats are run at the
first-stage order and shuffles under the original format (K + M runs); ``grid`` runs every format under every
order (K x (M + 1)). One backend serves every run, behind the answer cache, so a rerun is free and an
interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..backends import Backend, create_backend
from ..errors import ConfigError
from ..eval import evaluate
from ..options import option
from ..prompts.formats import Format, sample_formats
from ..prompts.template import Template
from ..reranker import Reranker
from ..spec import RerankerSpec
from ..strategies import STRATEGIES
from ..types import Run
from .cost import CostEstimate, CountingBackend
from .orders import shown, shuffled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudySettings:
    """What a study varies and how it scores."""

    formats: int = option(5, bounds=(1, None), help="prompt formats, the template as written included")
    orders: int = option(3, bounds=(0, None), help="seeded shuffles of the first-stage order (besides it)")
    seed: int = option(0, help="seed of the format sample and of the shuffles")
    depth: int | None = option(20, bounds=(1, None), help="candidates reranked per query (none: all)")
    grid: bool = option(False, help="every format under every order (default: formats at the first-stage "
                                    "order, shuffles under the original format)")
    measure: str = option("nDCG@10", help="the measure compared across formats and orders (ir-measures name)")
    resamples: int = option(10000, bounds=(100, None), help="bootstrap resamples for the paired tests")


@dataclass(frozen=True)
class Cell:
    """One run of the study: format ``format`` under input order ``order``."""

    format: int
    order: int

    @property
    def label(self) -> str:
        return f"F{self.format:02d}/O{self.order}"


class Study:
    """A reranker (preset or spec, with overrides), candidates and judgments, and :class:`StudySettings`.

    Building it checks the reranker, samples the formats, writes their template files under ``out_dir`` and
    prepares the shuffled inputs; nothing loads a model until :meth:`run` (``backend``: a ready backend to use
    instead of the spec's, e.g. the oracle in tests; ``dataset``: a name for the report)."""

    def __init__(self, reranker: str | RerankerSpec, candidates: Run, qrels: Any, out_dir: str | Path,
                 settings: StudySettings | None = None, overrides: Mapping[str, Any] | None = None,
                 backend: Backend | None = None, dataset: str = ""):
        self.settings = settings or StudySettings()
        self.dataset = dataset
        self.out = Path(out_dir)
        self.base = Reranker(reranker, backend_instance=backend, **dict(overrides or {}))
        self.spec = self.base.spec
        self.backend = backend
        self.qrels = qrels
        if not len(candidates):
            raise ConfigError("the study has no queries")
        self.candidates = candidates
        strategy_cls = STRATEGIES.get(self.spec.strategy)
        s = self.settings
        self.template: Template = self.base.strategy.template
        self.formats: list[Format] = sample_formats(self.template, s.formats, s.seed,
                                                    strategy_cls.format_enumerations)
        if len(self.formats) < s.formats:
            log.warning("template %s has %d distinct formats in the grammar, fewer than the %d asked for",
                        self.template.name, len(self.formats), s.formats)
        self.templates = [f.apply(self.template) for f in self.formats]
        self.orders = list(range(s.orders + 1))
        self.inputs = {o: shuffled(candidates, s.depth, s.seed, o) for o in self.orders}
        if s.grid:
            self.cells = [Cell(f, o) for f in range(len(self.formats)) for o in self.orders]
        else:
            self.cells = [Cell(f, 0) for f in range(len(self.formats))] + [Cell(0, o) for o in self.orders[1:]]
        self.template_paths = self._write_templates()
        self._strategies: dict[int, Any] = {0: self.base.strategy}

    # -- plan ----------------------------------------------------------------------------------------
    def _write_templates(self) -> list[Path]:
        folder = self.out / "formats"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, t in enumerate(self.templates):
            text = yaml.safe_dump(t.to_dict(), sort_keys=False, allow_unicode=True, width=1000)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
            path = folder / f"F{i:02d}-{digest}.yaml"  # the name changes with the content (templates are cached by path)
            if not path.exists():
                path.write_text(text, encoding="utf-8")
            paths.append(path.resolve())
        return paths

    def spec_for(self, fmt: int) -> RerankerSpec:
        """The reranker's spec with format ``fmt``'s template file."""
        return self.spec if fmt == 0 else dataclasses.replace(self.spec, template=str(self.template_paths[fmt]))

    def reranker(self, fmt: int, backend: Backend) -> Reranker:
        return Reranker(self.spec_for(fmt), backend_instance=backend)

    def shown(self, order: int) -> dict[str, list[str]]:
        """Per query, the candidate ids in the order the reranker is shown them."""
        return shown(self.inputs[order], self.settings.depth)

    def strategy(self, fmt: int) -> Any:
        """The strategy with format ``fmt``'s template (built once)."""
        if fmt not in self._strategies:
            self._strategies[fmt] = STRATEGIES.get(self.spec.strategy)(self.templates[fmt], self.spec.params)
        return self._strategies[fmt]

    def estimate(self) -> CostEstimate:
        """The model calls the study makes with an empty cache (a dry run; see :mod:`.cost`)."""
        counts = []
        for seed in (0, 1):
            keys: set[tuple[Any, ...]] = set()
            rows = []
            for cell in self.cells:
                strategy = self.strategy(cell.format)
                requests, before = 0, len(keys)
                for r in self.inputs[cell.order].values():
                    docs = [sd.doc for sd in (r.docs if self.settings.depth is None else r.docs[: self.settings.depth])]
                    judge = CountingBackend(docs, seed, keys, strategy.max_doc_tokens)
                    strategy.rerank_many(judge, [(r.query, docs)])
                    requests += judge.requests
                rows.append({"cell": cell.label, "format": self.formats[cell.format].key(), "requests": requests,
                             "new": len(keys) - before})
            counts.append(rows)
        exact = counts[0] == counts[1]
        rows = max(counts, key=lambda rs: sum(r["new"] for r in rs))
        return CostEstimate(self.spec.strategy, rows, sum(r["requests"] for r in rows), sum(r["new"] for r in rows),
                            exact)

    # -- run -----------------------------------------------------------------------------------------
    def run(self, cache: str | Path | None = None, progress: bool = False,
            on_cell: Callable[[Cell, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run every cell; return one record per cell (per-query scores, rankings, calls)."""
        backend = self._backend(cache)
        records = []
        try:
            for cell in self.cells:
                rec = self._run_cell(cell, backend, progress)
                records.append(rec)
                if on_cell is not None:
                    on_cell(cell, rec)
        finally:
            if self.backend is None or cache is not None:
                _close(backend, owned=self.backend is None)
        return records

    def _backend(self, cache: str | Path | None) -> Any:
        backend: Any = self.backend
        if backend is None:
            log.info("loading backend %s for %s", self.spec.backend, self.spec.model)
            backend = create_backend(self.spec.backend, self.spec.model, **dict(self.spec.backend_options))
        if cache is not None:
            from ..backends.cached import CachedBackend

            backend = CachedBackend(backend, cache)
        return backend

    def _run_cell(self, cell: Cell, backend: Any, progress: bool) -> dict[str, Any]:
        s = self.settings
        before = _counters(backend)
        t0 = time.perf_counter()
        run = self.reranker(cell.format, backend).rerank_run(self.inputs[cell.order], depth=s.depth,
                                                             progress=progress)
        wall = time.perf_counter() - t0
        after = _counters(backend)
        result = evaluate(run, self.qrels, [s.measure], queries=list(run))
        per_query = {q: v[s.measure] for q, v in sorted(result.per_query.items()) if s.measure in v}
        shown_ids = self.shown(cell.order)
        rankings = {qid: [sd.docid for sd in r.docs[: len(shown_ids[qid])]] for qid, r in run.items()}
        log.info("%s %s: %s %.4f", cell.label, self.formats[cell.format].key(), s.measure,
                 result.aggregate[s.measure])
        return {
            "cell": cell.label, "format": cell.format, "order": cell.order,
            "mean": float(result.aggregate[s.measure]), "per_query": per_query, "rankings": rankings,
            "requests": sum(int(r.metadata.get("model_calls", 0)) for r in run.values()),
            "model_calls": after["model_calls"] - before["model_calls"],
            "cached_calls": after["cached_calls"] - before["cached_calls"],
            "wall_s": round(wall, 3), "totals": dict(run.metadata.get("totals", {})),
        }

    # -- description ---------------------------------------------------------------------------------
    def example(self, fmt: int, chars: int = 90) -> str:
        """What the model is shown first for the first query in format ``fmt`` (documents shortened to
        ``chars`` characters, messages as ``[role]`` blocks, before the model's chat template)."""
        first = next(iter(self.inputs[0].values()))
        k = len(first.docs) if self.settings.depth is None else min(self.settings.depth, len(first.docs))
        docs = [dataclasses.replace(sd.doc, text=_shorten(sd.doc.text, chars), title="") for sd in first.docs[:k]]
        requests = self.strategy(fmt).first_requests(first.query, docs, CountingBackend())
        if not requests:
            return ""
        req = requests[0]
        prompt = getattr(req, "prompt", None) or getattr(req, "text", "")
        text = _show(prompt)
        choices = getattr(req, "choices", None)
        if choices:
            text += "\n[answers scored] " + " | ".join(repr(c) for c in choices)
        return text

    def describe(self) -> dict[str, Any]:
        """The study's setup, for its JSON and report."""
        s = self.settings
        return {
            "preset": self.spec.name or "", "dataset": self.dataset, "spec": self.spec.to_dict(),
            "strategy": self.spec.strategy,
            "template": self.template.name, "queries": len(self.candidates), "settings": dataclasses.asdict(s),
            "design": "grid" if s.grid else "cross",
            "formats": [{"index": i, "key": f.key(), "format": f.to_dict(), "template": str(p)}
                        for i, (f, p) in enumerate(zip(self.formats, self.template_paths))],
            "cells": [c.label for c in self.cells],
        }


def _counters(backend: Any) -> dict[str, int]:
    stats = backend.stats() if hasattr(backend, "stats") else backend.usage.snapshot()
    return {"model_calls": int(stats.get("model_calls", 0)), "cached_calls": int(stats.get("cached_calls", 0))}


def _close(backend: Any, owned: bool) -> None:
    if owned:
        backend.close()
    elif hasattr(backend, "store"):
        backend.store.close()  # a cache wrapper around a backend the caller owns: close only the cache


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def _show(prompt: Any) -> str:
    from ..backends.base import without_breaks

    if isinstance(prompt, str):
        return without_breaks(prompt)
    blocks = [f"[{m.role}]\n{without_breaks(m.content)}" for m in prompt.messages]
    if prompt.prefix:
        blocks.append(f"[assistant, continued by the model]\n{without_breaks(prompt.prefix)}")
    return "\n".join(blocks)


__all__ = ["Cell", "Study", "StudySettings"]
