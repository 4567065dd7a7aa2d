"""Benchmark configs: conditions x datasets with expected metrics, validated before any model loads.

A config is YAML (see ``docs/bench.md``). :func:`load_config` checks every name (presets, datasets,
retrievers, measures, candidate sources, strategy parameters, backend options) and reports a
problem as ``FILE:LINE: what is wrong; did you mean ...?``.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RerankkitError
from .validate import (
    Where,
    resolve_dataset,
    resolve_measure,
    resolve_preset,
    resolve_retriever,
)
from .yamllines import LineDict, LineList, load_yaml

TOP_KEYS = ("name", "description", "datasets", "measures", "defaults", "conditions", "output", "cache",
            "cache_chunk", "presets", "tolerance", "missing_as_zero", "baseline")
SHARED_KEYS = ("reranker", "overrides", "retriever", "retriever_overrides", "remove_query", "candidates", "k", "depth",
               "queries", "chunk_size", "datasets", "tolerance")
CONDITION_KEYS = ("name", *SHARED_KEYS, "expected", "notes")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_NONE = ("none", "null", "")


@dataclass(frozen=True)
class Expectation:
    """``measure`` on ``dataset`` should be ``value`` within ``tolerance`` (absolute)."""

    dataset: str
    measure: str
    value: float
    tolerance: float
    line: int = 0


@dataclass(frozen=True)
class Condition:
    """One system: a first stage (retriever preset or candidate list) and optionally a reranker."""

    name: str
    datasets: tuple[str, ...]
    reranker: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    retriever: str | None = None
    retriever_overrides: Mapping[str, Any] = field(default_factory=dict)
    remove_query: bool = False  # drop a retrieved document whose id is the query's (BEIR / Anserini -removeQuery)
    candidates: str | None = None  # a dataset's candidate source name, or a file path
    k: int | None = None  # first-stage depth (retriever k, or candidates cut to k)
    depth: int | None = None  # rerank the first `depth` candidates
    queries: int | None = None  # only the first N queries
    chunk_size: int | None = None
    expected: tuple[Expectation, ...] = ()
    notes: str = ""
    line: int = 0

    def first_stage(self) -> str:
        """A short description of where the candidates come from."""
        if self.retriever:
            return f"retriever {self.retriever}"
        return f"candidates {self.candidates or '(dataset default)'}"


@dataclass(frozen=True)
class BenchConfig:
    name: str
    path: Path
    datasets: tuple[str, ...]
    labels: Mapping[str, str]  # canonical dataset name -> name as written in the config
    measures: tuple[str, ...]
    conditions: tuple[Condition, ...]
    description: str = ""
    output: Path | None = None
    cache: Path | None | bool = True  # True: <output>/cache.sqlite; False: no cache
    cache_chunk: int = 32
    presets: tuple[Path, ...] = ()
    sha256: str = ""
    missing_as_zero: bool = True  # judged queries (of those a condition selects) absent from its run score 0
    baseline: str = ""  # the condition the report compares every other one with, query by query (the first)

    def label(self, dataset: str) -> str:
        return self.labels.get(dataset, dataset)

    def pairs(self, only: Sequence[str] | None = None) -> list[tuple[Condition, str]]:
        """(condition, dataset) pairs in config order, filtered by ``COND[/DATASET]`` glob patterns."""
        every = [(c, d) for c in self.conditions for d in c.datasets]
        if not only:
            return every
        picked = [(c, d) for c, d in every if any(_match(p, c.name, d, self.label(d)) for p in only)]
        if not picked:
            names = [f"{c.name}/{self.label(d)}" for c, d in every]
            raise ConfigError(f"--only {', '.join(only)} matches no run of {self.path.name}; runs: {', '.join(names)}")
        return picked

    def expectations(self) -> list[tuple[Condition, Expectation]]:
        return [(c, e) for c in self.conditions for e in c.expected]


def _match(pattern: str, cond: str, dataset: str, label: str) -> bool:
    """``COND`` or ``COND/DATASET`` (split at the first '/': dataset names may contain one), with globs."""
    head, sep, tail = pattern.partition("/")
    if not fnmatch.fnmatchcase(cond, head):
        return False
    return not sep or fnmatch.fnmatchcase(dataset, tail) or fnmatch.fnmatchcase(label, tail)


def load_config(path: str | Path) -> BenchConfig:
    """Read and fully validate a benchmark config (no model is loaded)."""
    p = Path(path)
    raw = load_yaml(p)
    where = Where(p)
    if not isinstance(raw, LineDict):
        raise ConfigError(f"{p}: a benchmark config is a mapping with 'datasets' and 'conditions'")
    _known_keys(raw, TOP_KEYS, where, "config")
    for key in ("datasets", "conditions"):
        if key not in raw:
            raise ConfigError(f"{where.at(raw.line)}: missing {key!r}")
    presets = tuple(_register_presets(raw, where))
    datasets, labels = _datasets(raw["datasets"], where, raw.line_of("datasets"))
    measures = [resolve_measure(m, where.at(_line(raw.get("measures"), i, raw.line_of("measures"))))
                for i, m in enumerate(_as_list(raw.get("measures", ["nDCG@10"]), "measures", where, raw))]
    tolerance = _number(raw.get("tolerance", 0.01), "tolerance", where.at(raw.line_of("tolerance")))
    missing_as_zero = raw.get("missing_as_zero", True)
    if not isinstance(missing_as_zero, bool):
        raise ConfigError(f"{where.at(raw.line_of('missing_as_zero'))}: missing_as_zero must be true or false")
    defaults = raw.get("defaults") or LineDict()
    if not isinstance(defaults, LineDict):
        raise ConfigError(f"{where.at(raw.line_of('defaults'))}: 'defaults' must be a mapping")
    _known_keys(defaults, SHARED_KEYS, where, "defaults")
    conds_raw = raw["conditions"]
    if not isinstance(conds_raw, LineList) or not conds_raw:
        raise ConfigError(f"{where.at(raw.line_of('conditions'))}: 'conditions' must be a non-empty list")
    conditions: list[Condition] = []
    for i, c in enumerate(conds_raw):
        if not isinstance(c, LineDict):
            raise ConfigError(f"{where.at(conds_raw.line_of(i))}: each condition is a mapping (reranker: ..., ...)")
        cond = _condition(c, defaults, datasets, labels, tolerance, where)
        if any(cond.name == o.name for o in conditions):
            raise ConfigError(f"{where.at(c.line)}: two conditions are named {cond.name!r}; give one a 'name'")
        conditions.append(cond)
    baseline = str(raw.get("baseline") or conditions[0].name)
    names = [c.name for c in conditions]
    if baseline not in names:
        close = difflib.get_close_matches(baseline, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"conditions: {', '.join(names)}"
        raise ConfigError(f"{where.at(raw.line_of('baseline'))}: baseline {baseline!r} is not a condition; {hint}")
    for cond in conditions:
        for e in cond.expected:
            if e.measure not in measures:
                measures.append(e.measure)
    return BenchConfig(
        name=str(raw.get("name") or p.stem), path=p.resolve(), datasets=tuple(datasets), labels=labels,
        measures=tuple(measures), conditions=tuple(conditions), description=str(raw.get("description") or ""),
        output=(p.parent / str(raw["output"])).resolve() if raw.get("output") else None,
        cache=_cache_setting(raw.get("cache", True), p), cache_chunk=_positive(raw.get("cache_chunk", 32), "cache_chunk",
                                                                             where.at(raw.line_of("cache_chunk"))),
        presets=presets, sha256=hashlib.sha256(p.read_bytes()).hexdigest(), missing_as_zero=missing_as_zero,
        baseline=baseline,
    )


def _condition(c: LineDict, defaults: LineDict, all_datasets: list[str], labels: dict[str, str], tolerance: float,
               where: Where) -> Condition:
    _known_keys(c, CONDITION_KEYS, where, "condition")

    def get(key: str) -> tuple[Any, int]:
        if key in c:
            return c[key], c.line_of(key)
        return defaults.get(key), defaults.line_of(key)

    reranker, r_line = get("reranker")
    reranker = None if reranker is None or str(reranker).lower() in _NONE else str(reranker)
    overrides = {**_mapping(defaults.get("overrides"), "overrides", where, defaults.line_of("overrides")),
                 **_mapping(c.get("overrides"), "overrides", where, c.line_of("overrides"))}
    o_line = c.line_of("overrides") if "overrides" in c else defaults.line_of("overrides")
    if reranker:
        reranker = resolve_preset(reranker, overrides, where.at(r_line), where.at(o_line))
    elif "overrides" in c:
        raise ConfigError(f"{where.at(o_line)}: 'overrides' without a reranker")
    retriever, t_line = get("retriever")
    retriever_overrides = {**_mapping(defaults.get("retriever_overrides"), "retriever_overrides", where, defaults.line),
                           **_mapping(c.get("retriever_overrides"), "retriever_overrides", where, c.line)}
    candidates, c_line = get("candidates")
    if retriever and candidates:
        if ("retriever" in c) == ("candidates" in c):
            raise ConfigError(f"{where.at(c.line)}: give either 'retriever' or 'candidates', not both")
        if "candidates" in c:
            retriever = None  # the condition's own choice wins over the default
        else:
            candidates = None
    if retriever:
        ro_line = c.line_of("retriever_overrides") if "retriever_overrides" in c else defaults.line_of("retriever_overrides")
        retriever = resolve_retriever(str(retriever), where.at(t_line), retriever_overrides, where.at(ro_line))
    remove_query, rq_line = get("remove_query")
    if remove_query is not None and not isinstance(remove_query, bool):
        raise ConfigError(f"{where.at(rq_line)}: remove_query must be true or false")
    if remove_query and not retriever:
        raise ConfigError(f"{where.at(rq_line)}: remove_query applies to a retriever's results only")
    ds_raw, d_line = get("datasets")
    if ds_raw is None:
        datasets = list(all_datasets)
    else:
        datasets, more = _datasets(ds_raw, where, d_line)
        for d in datasets:
            if d not in all_datasets:
                raise ConfigError(f"{where.at(d_line)}: dataset {more[d]!r} is not in the config's 'datasets' "
                                  f"({', '.join(labels.values())})")
    candidates = _candidates(candidates, retriever, datasets, labels, where.at(c_line))
    ints = {k: _optional_int(get(k)[0], k, where.at(get(k)[1])) for k in ("k", "depth", "queries", "chunk_size")}
    tol_v, tol_line = get("tolerance")
    tol = tolerance if tol_v is None else _number(tol_v, "tolerance", where.at(tol_line))
    name = str(c.get("name") or reranker or retriever or candidates and Path(str(candidates)).name.split(".")[0]
               or "first-stage")
    if not _NAME.match(name):
        raise ConfigError(f"{where.at(c.line_of('name'))}: condition name {name!r} must be one word of letters, "
                          "digits, '.', '_', '+', '-' (it names files and run tags)")
    expected = _expectations(c.get("expected"), datasets, labels, tol, where, c.line_of("expected"))
    return Condition(name=name, datasets=tuple(datasets), reranker=reranker, overrides=overrides,
                     retriever=retriever, retriever_overrides=retriever_overrides,
                     remove_query=bool(remove_query), candidates=candidates,
                     expected=tuple(expected), notes=str(c.get("notes") or ""), line=c.line, **ints)


def _datasets(value: Any, where: Where, line: int) -> tuple[list[str], dict[str, str]]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    labels: dict[str, str] = {}
    for i, d in enumerate(items):
        at = where.at(_line(value, i, line))
        name = resolve_dataset(str(d), at, where.path.parent)
        if name in out:
            raise ConfigError(f"{at}: dataset {d!r} is listed twice")
        out.append(name)
        labels[name] = str(d)
    if not out:
        raise ConfigError(f"{where.at(line)}: list at least one dataset")
    return out, labels


def _candidates(value: Any, retriever: str | None, datasets: list[str], labels: dict[str, str], at: str) -> str | None:
    from ..data import DATASETS

    if value is None or retriever:
        for d in datasets if not retriever else ():
            if d in DATASETS and not DATASETS.get(d).get("candidates"):
                raise ConfigError(f"{at}: dataset {labels[d]!r} ships no candidate lists; give the condition a "
                                  "'retriever' (a retriever preset such as bm25) or 'candidates' (a file)")
        return None
    text = str(value)
    if "/" in text or text.endswith((".jsonl", ".json", ".gz", ".trec", ".run", ".txt")):
        p = Path(at.split(":")[0]).parent / text
        if not p.exists():
            raise ConfigError(f"{at}: candidates file {text!r} not found (looked at {p.resolve()})")
        return str(p.resolve())
    for d in datasets:
        if d not in DATASETS:
            continue
        sources = list(DATASETS.get(d).get("candidates", {}))
        if text not in sources:
            close = difflib.get_close_matches(text, sources, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"it has: {', '.join(sources) or 'none'}"
            raise ConfigError(f"{at}: dataset {labels[d]!r} has no candidate source {text!r}; {hint}")
    return text


def _expectations(value: Any, datasets: list[str], labels: dict[str, str], tol: float, where: Where,
                  line: int) -> list[Expectation]:
    if value is None:
        return []
    if not isinstance(value, LineDict):
        raise ConfigError(f"{where.at(line)}: 'expected' maps dataset -> {{measure: value}}")
    out = []
    for ds_key, scores in value.items():
        at = where.at(value.line_of(ds_key))
        ds = resolve_dataset(str(ds_key), at, where.path.parent)
        if ds not in datasets:
            raise ConfigError(f"{at}: expectation for {ds_key!r}, which this condition does not run "
                              f"({', '.join(labels[d] for d in datasets)})")
        if not isinstance(scores, LineDict):
            raise ConfigError(f"{at}: expected scores are a mapping such as {{nDCG@10: 0.7183}}")
        for m, spec in scores.items():
            m_at = where.at(scores.line_of(m))
            measure = resolve_measure(str(m), m_at)
            t = tol
            if isinstance(spec, Mapping):
                _known_keys(spec, ("value", "tolerance"), where, "expectation")
                if "value" not in spec:
                    raise ConfigError(f"{m_at}: an expectation needs a 'value'")
                t = _number(spec.get("tolerance", tol), "tolerance", m_at)
                spec = spec["value"]
            v = _number(spec, f"expected {measure}", m_at)
            if v > 1.0:
                raise ConfigError(f"{m_at}: expected {measure} = {v}: write scores as fractions "
                                  f"({v / 100:.4f}, not {v})")
            out.append(Expectation(ds, measure, v, t, scores.line_of(m)))
    return out


def _register_presets(raw: LineDict, where: Where) -> list[Path]:
    from ..presets import RERANKER_PRESETS, register_presets

    files = _as_list(raw.get("presets", []), "presets", where, raw)
    out = []
    for f in files:
        p = (where.path.parent / str(f)).resolve()
        try:
            already = set(RERANKER_PRESETS.names())
            for name in _toml_tables(p):
                if name in already:
                    break  # registered earlier in this process (the same file loaded twice)
            else:
                register_presets(p)
        except RerankkitError as exc:
            raise ConfigError(f"{where.at(raw.line_of('presets'))}: {exc}") from None
        out.append(p)
    return out


def _toml_tables(p: Path) -> list[str]:
    from .._toml_spec import read_toml_file

    return list(read_toml_file(p, "presets file"))


def _cache_setting(value: Any, path: Path) -> Path | bool:
    if value is True or value is None:
        return True
    if value is False or str(value).lower() in ("false", "no", "off", "none"):
        return False
    return (path.parent / Path(str(value)).expanduser()).resolve()


def _known_keys(d: Mapping[str, Any], allowed: Sequence[str], where: Where, what: str) -> None:
    for key in d:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"known: {', '.join(allowed)}"
            line = d.line_of(key) if isinstance(d, LineDict) else 0
            raise ConfigError(f"{where.at(line)}: unknown {what} key {key!r}; {hint}")


def _as_list(value: Any, what: str, where: Where, parent: LineDict) -> list[Any]:
    if isinstance(value, (str, int, float)):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where.at(parent.line_of(what))}: {what!r} must be a list")
    return list(value)


def _mapping(value: Any, what: str, where: Where, line: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where.at(line)}: {what!r} must be a mapping (KEY: VALUE)")
    return {str(k): v for k, v in value.items()}


def _line(value: Any, index: int, default: int) -> int:
    return value.line_of(index) if isinstance(value, LineList) else default


def _number(value: Any, what: str, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{at}: {what} must be a number, got {value!r}")
    return float(value)


def _optional_int(value: Any, what: str, at: str) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _positive(value, what, at)


def _positive(value: Any, what: str, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{at}: {what} must be a positive integer, got {value!r}")
    return int(value)


__all__ = ["BenchConfig", "Condition", "Expectation", "load_config"]
