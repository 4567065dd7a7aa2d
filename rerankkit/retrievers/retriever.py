"""The front door: ``Retriever("bm25").index(corpus)`` then ``.search(queries, k)`` -> :class:`Run`."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataNotFoundError, InputError, MissingExtraError
from ..locations import cache_home
from ..options import build_options
from ..text import repair_text
from ..types import Doc, Query, Ranking, Run, ScoredDoc
from .base import ENGINES, Engine
from .index_cache import MANIFEST, build_index, check_index, index_key, remove_index
from .presets import RETRIEVER_PRESETS
from .spec import RetrieverSpec
from .store import CorpusStats, as_corpus, read_corpus, read_store, write_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexInfo:
    """Where an index lives and how it came to be."""

    path: Path
    key: str
    n_docs: int
    reused: bool
    build_s: float | None
    load_s: float
    replaced_chars: int = 0
    docs_with_replacements: int = 0
    build: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d["build"] = dict(self.build)
        return d


class Retriever:
    """A retriever built from a preset name or a :class:`RetrieverSpec`, with parameter overrides.

    ``Retriever("bm25")``, ``Retriever("bm25-lucene", k1=1.2)``, ``Retriever("dense", model="BAAI/bge-small-en-v1.5")``.
    Indexes are cached under ``cache_dir`` (default ``$RERANKKIT_CACHE`` or ``~/.cache/rerankkit``),
    keyed by engine, index settings and a fingerprint of the corpus; ``verify`` is ``"full"``
    (re-hash every index file on open, the default) or ``"size"``.
    """

    def __init__(
        self,
        name_or_spec: str | RetrieverSpec = "bm25",
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        verify: str = "full",
        **overrides: Any,
    ):
        self.spec, engine_cls, params = resolve_retriever_spec(name_or_spec, overrides)
        self.engine: Engine = engine_cls(params)
        self.cache_dir = cache_home(cache_dir)
        self.verify = verify
        self.info: IndexInfo | None = None
        self._docs: list[Doc] = []

    def __repr__(self) -> str:
        return f"Retriever({self.spec.name or self.spec.engine!r}, indexed={self.info is not None})"

    # ------------------------------------------------------------------ indexing
    def index(self, corpus: Iterable[Doc | str] | Any, *, rebuild: bool = False, progress: bool = False,
              executor: Any | None = None) -> IndexInfo:
        """Index ``corpus`` (docs, strings, or a dataset), reusing an intact cached index when there is one.

        ``executor`` (e.g. ``RayExecutor()``) shares a dense index's encoding among its workers.
        """
        if executor is not None and not getattr(self.engine, "parallel_build", False):
            raise ConfigError(f"the {self.spec.engine} engine builds its index in one process; "
                              "executor= applies to the dense engine")
        decode = getattr(corpus, "decode_stats", None)
        before = getattr(decode, "replaced", 0)
        docs, stats = read_corpus(as_corpus(corpus))
        if decode is not None:  # undecodable bytes the dataset reader already replaced with U+FFFD
            stats.replaced_chars += getattr(decode, "replaced", 0) - before
        if not docs:
            raise InputError("the corpus is empty: nothing to index")
        settings = {k: self.spec.params[k] for k in self.engine.index_params}
        key = index_key(self.spec.engine, settings, stats.fingerprint)
        folder = self.cache_dir / "indexes" / self.spec.engine / key
        manifest, reason = check_index(folder, key, self.verify)
        if manifest is not None and rebuild:
            remove_index(folder, "rebuild requested")
            manifest = None
        elif manifest is None and reason != "missing":
            remove_index(folder, reason)
        if manifest is not None:
            try:
                return self._open(folder, docs, stats, manifest, reused=True)
            except (MissingExtraError, ConfigError):
                raise  # the index is fine; this environment cannot open it
            except Exception as exc:  # a file that passed the check but does not load
                remove_index(folder, f"failed to load: {exc!r}")
        folder, manifest = self._build(docs, stats, key, settings, progress, executor)
        return self._open(folder, docs, stats, manifest, reused=False)

    def _build(
        self, docs: list[Doc], stats: CorpusStats, key: str, settings: Mapping[str, Any], progress: bool,
        executor: Any | None = None,
    ) -> tuple[Path, dict[str, Any]]:
        log.info("building %s index over %d documents", self.spec.engine, len(docs))

        def build(tmp: Path) -> dict[str, Any]:
            write_store(docs, tmp)
            if executor is not None:
                return self.engine.build(docs, tmp, progress, executor=executor)  # type: ignore[call-arg]
            return self.engine.build(docs, tmp, progress)

        meta = {"spec": self.spec.to_dict(), "settings": dict(settings),
                "corpus": {"fingerprint": stats.fingerprint, "n_docs": stats.n_docs,
                           "replaced_chars": stats.replaced_chars,
                           "docs_with_replacements": stats.docs_with_replacements}}
        return build_index(self.cache_dir / "indexes", self.spec.engine, key, build, meta)

    def _open(
        self, folder: Path, docs: list[Doc], stats: CorpusStats, manifest: Mapping[str, Any], reused: bool
    ) -> IndexInfo:
        t0 = time.perf_counter()
        self.engine.load(folder, [d.docid for d in docs])
        build = dict(manifest.get("build", {}))
        self._docs = docs
        self.info = IndexInfo(folder, str(manifest["key"]), len(docs), reused,
                              None if reused else build.get("build_s"), round(time.perf_counter() - t0, 3),
                              stats.replaced_chars, stats.docs_with_replacements, build)
        log.info("%s index %s (%d docs) %s", self.spec.engine, folder, len(docs), "reused" if reused else "built")
        return self.info

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: str = "full", **search_overrides: Any) -> Retriever:
        """Open an index folder made by :meth:`index` without the corpus (its documents are stored with it)."""
        folder = Path(path)
        manifest, reason = check_index(folder, None, verify)
        if manifest is None:
            raise DataNotFoundError(f"no usable index at {folder}: {reason}; build it with Retriever(...).index(corpus)")
        spec = RetrieverSpec.from_dict(manifest["spec"])
        r = cls(spec, cache_dir=folder.parent.parent.parent, verify=verify, **search_overrides)
        settings = {k: r.spec.params[k] for k in r.engine.index_params}
        if settings != manifest["settings"]:
            raise InputError(f"overrides {sorted(search_overrides)} change the index settings of {folder}")
        docs = read_store(folder)
        stats = CorpusStats(n_docs=len(docs), fingerprint=manifest["corpus"]["fingerprint"])
        r._open(folder, docs, stats, manifest, reused=True)
        return r

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: Iterable[Query | str] | Query | str | Any,
        k: int = 1000,
        *,
        remove_query: bool = False,
        progress: bool = False,
    ) -> Run:
        """Top-``k`` documents (with their texts) for every query.

        ``queries`` may also be a dataset (its ``queries()``). Strings become queries ``q0, q1, ...``.
        An empty query gets an empty ranking; ``k`` larger
        than the corpus returns every document the engine scores (BM25: every document sharing a
        term with the query). ``remove_query`` drops a document whose id equals the query id (BEIR
        convention for ArguAna/Quora, as Anserini's ``-removeQuery``).
        """
        if self.info is None:
            raise InputError("this retriever has no index yet: call index(corpus) first")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        qs = _as_queries(queries)
        live = [q for q in qs if q.text.strip()]
        texts, replaced = [], 0
        for q in live:  # lone surrogates become U+FFFD (engines cannot encode them); counted in the metadata
            text, n = repair_text(q.text)
            texts.append(text)
            replaced += n
        want = min(k + int(remove_query), len(self._docs))
        t0 = time.perf_counter()
        hits = self.engine.search(texts, want, progress) if live else []
        search_s = time.perf_counter() - t0
        by_qid = dict(zip((q.qid for q in live), hits))
        rankings = []
        for q in qs:
            docs = [ScoredDoc(self._docs[i], s) for i, s in by_qid.get(q.qid, [])]
            if remove_query:
                docs = [d for d in docs if d.doc.docid != q.qid]
            rankings.append(Ranking(q, tuple(docs[:k])))
        meta = {
            "retriever": self.spec.to_dict(),
            "index": self.info.to_dict(),
            "k": k,
            "n_queries": len(qs),
            "empty_queries": len(qs) - len(live),
            "replaced_chars": replaced,
            "search_s": round(search_s, 4),
            "queries_per_s": round(len(live) / search_s, 2) if search_s > 0 and live else None,
        }
        if len(qs) - len(live):
            log.info("%d empty quer%s got empty rankings", len(qs) - len(live), "y" if len(qs) - len(live) == 1 else "ies")
        return Run(rankings, meta)

    def retrieve(self, query: Query | str, k: int = 10) -> Ranking:
        """Top-``k`` documents for one query."""
        run = self.search([query], k)
        return next(iter(run.values()))

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_retriever_spec(name_or_spec: str | RetrieverSpec, overrides: Mapping[str, Any] | None = None
                      ) -> tuple[RetrieverSpec, type[Engine], Any]:
    """The spec, engine class and validated parameters a :class:`Retriever` would use (nothing is loaded).

    Overrides are engine parameters (``k1=1.2``, or ``params.k1``); ``params={...}`` gives several."""
    base = name_or_spec if isinstance(name_or_spec, RetrieverSpec) else RETRIEVER_PRESETS.get(name_or_spec)
    engine_cls: type[Engine] = ENGINES.get(base.engine).load()
    values = dict(base.params)
    for key, value in (overrides or {}).items():
        if key == "params":
            values.update(value)
        else:
            values[key.removeprefix("params.")] = value
    label = f"retriever {base.name or base.engine!r}"
    params = build_options(engine_cls.Params, values, owner=label, label=label, noun="parameter")
    return base.replace(engine=ENGINES.resolve(base.engine), params=dataclasses.asdict(params)), engine_cls, params


def _as_queries(queries: Iterable[Query | str] | Query | str | Any) -> list[Query]:
    if isinstance(queries, (str, Query)):
        queries = [queries]
    elif callable(getattr(queries, "queries", None)):  # a dataset
        queries = queries.queries()
    out = []
    for i, q in enumerate(queries):
        if isinstance(q, str):
            q = Query(f"q{i}", q)
        elif not isinstance(q, Query):
            raise InputError(f"queries must be Query or str, got {type(q).__name__} at position {i}")
        out.append(q)
    return out


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an index folder (for inspection)."""
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
