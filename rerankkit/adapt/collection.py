"""The target collection (documents of one or more datasets) and the evaluation data that must stay unseen."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..data import load_dataset
from ..errors import ConfigError
from ..types import Doc, Query

log = logging.getLogger(__name__)


@dataclass
class Collection:
    """Documents in a fixed order, where they came from, and a fingerprint of their ids and texts."""

    docs: list[Doc]
    sources: list[str]
    dropped_short: int = 0
    fingerprint: str = ""
    by_id: dict[str, Doc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {d.docid: d for d in self.docs}
        if not self.fingerprint:
            h = hashlib.sha256()
            for d in self.docs:
                h.update(d.docid.encode() + b"\0" + d.prompt_text().encode() + b"\0")
            self.fingerprint = h.hexdigest()[:16]


def load_collection(datasets: Sequence[str], candidate_sources: Sequence[str], min_chars: int = 0,
                    max_docs: int | None = None) -> tuple[Collection, list[Doc]]:
    """(documents that may be sampled, every document of the collection).

    A dataset with a corpus gives its corpus; one without (TREC DL ships only candidate lists) gives the
    passages of its candidate lists named in ``candidate_sources``. A document id seen twice keeps its first
    text. Documents shorter than ``min_chars`` characters are in the collection (they may be retrieved and
    used as negatives) but are never sampled."""
    seen: dict[str, Doc] = {}
    sources: list[str] = []
    for name in datasets:
        ds = load_dataset(name)
        if ds.has_corpus():
            docs: Iterable[Doc] = ds.corpus()
            sources.append(f"{name} (corpus)")
        else:
            have = ds.candidate_sources()
            use = [s for s in candidate_sources if s in have]
            if not use:
                raise ConfigError(f"dataset {name!r} has no corpus and none of the candidate lists "
                                  f"{list(candidate_sources)} (it has: {', '.join(have) or 'none'})")
            docs = [sd.doc for s in use for r in ds.candidates(s).values() for sd in r.docs]
            sources.append(f"{name} (texts of candidate lists {', '.join(use)})")
        for d in docs:
            seen.setdefault(d.docid, d)
    everything = list(seen.values())
    if max_docs:
        everything = everything[:max_docs]
    sampleable = [d for d in everything if len(d.prompt_text()) >= min_chars]
    if not sampleable:
        raise ConfigError(f"no document of {', '.join(datasets)} has {min_chars} characters or more "
                          f"(corpus.min_chars)")
    return Collection(sampleable, sources, dropped_short=len(everything) - len(sampleable)), everything


@dataclass
class EvalSet:
    """The evaluation queries (per dataset) and the documents judged for them."""

    queries: dict[str, list[Query]]
    judged: dict[str, set[str]]

    def all_qids(self) -> set[str]:
        return {q.qid for qs in self.queries.values() for q in qs}

    def all_judged(self) -> set[str]:
        return set().union(*self.judged.values()) if self.judged else set()


def load_eval_set(datasets: Sequence[str], split: str) -> EvalSet:
    """The ``split`` queries and judged documents of each dataset (a dataset without splits, such as TREC DL:
    its judged queries)."""
    queries: dict[str, list[Query]] = {}
    judged: dict[str, set[str]] = {}
    for name in datasets:
        ds = load_dataset(name)
        if hasattr(ds, "split"):
            ds = load_dataset(name, split=split)
        queries[name] = ds.queries()
        judged[name] = {r.docid for r in ds.qrels()}
    return EvalSet(queries, judged)


def normalize_query(text: str) -> str:
    """Lower case, letters and digits only, single spaces: how query texts are compared for overlap."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", t).split())


def query_overlap(train: Sequence[Query], evals: EvalSet) -> list[tuple[Query, str, Query]]:
    """Training queries that are evaluation queries, by id or by normalised text: (train, dataset, eval)."""
    by_text: dict[str, tuple[str, Query]] = {}
    by_id: dict[str, tuple[str, Query]] = {}
    for name, qs in evals.queries.items():
        for q in qs:
            by_text.setdefault(normalize_query(q.text), (name, q))
            by_id.setdefault(q.qid, (name, q))
    out = []
    for q in train:
        hit = by_id.get(q.qid) or by_text.get(normalize_query(q.text))
        if hit:
            out.append((q, hit[0], hit[1]))
    return out


def check_query_overlap(train: Sequence[Query], evals: EvalSet, split: str) -> None:
    """Refuse training queries that are evaluation queries (same id, or the same text once normalised)."""
    hits = query_overlap(train, evals)
    if hits:
        ex = "; ".join(f"{q.text!r} = {name} {e.qid}" for q, name, e in hits[:3])
        raise ConfigError(f"{len(hits)} training queries are {split} queries of "
                          f"{', '.join(sorted({n for _, n, _ in hits}))} (e.g. {ex}); refusing to train on "
                          f"evaluation queries")


def judged_overlap(docids: Iterable[str], evals: EvalSet) -> dict[str, int]:
    """Per evaluation dataset, how many of ``docids`` are judged for one of its evaluation queries."""
    ids = set(docids)
    return {name: len(ids & judged) for name, judged in evals.judged.items()}
