"""Training examples from qrels plus mined hard negatives, or from a teacher run."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..types import Doc, Qrel, Query, Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointwiseExample:
    query: Query
    doc: Doc
    label: int  # 1 relevant, 0 not


@dataclass(frozen=True)
class ListwiseExample:
    query: Query
    docs: tuple[Doc, ...]  # in the order shown to the model
    target: tuple[int, ...]  # positions of ``docs``, best first


def grades(qrels: Sequence[Qrel]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for q in qrels:
        out[q.qid][q.docid] = q.relevance
    return out


def pointwise_groups(queries: Sequence[Query], qrels: Sequence[Qrel], negatives: Run, corpus: Mapping[str, Doc],
                     positives_per_query: int, negatives_per_query: int, seed: int,
                     hard_positives: bool = True) -> list[list[PointwiseExample]]:
    """One group per (query, positive): the positive first, then the query's sampled hard negatives.

    Positives are the query's best-judged documents; with ``hard_positives`` judged-relevant documents
    that the retriever also found come first (at equal grade), so training positives look like the
    candidates the reranker will see. Negatives are retrieved documents judged not relevant or unjudged.
    """
    rng = random.Random(seed)
    g = grades(qrels)
    out: list[list[PointwiseExample]] = []
    skipped = 0
    for q in queries:
        rel = {d: r for d, r in g.get(q.qid, {}).items() if r > 0 and d in corpus}
        if not rel or q.qid not in negatives:
            skipped += 1
            continue
        found = {sd.docid for sd in negatives[q.qid].docs} if hard_positives else set()
        pos = sorted(rel, key=lambda d: (-rel[d], d not in found, rng.random()))[:positives_per_query]
        pool = [sd.doc for sd in negatives[q.qid].docs if g.get(q.qid, {}).get(sd.docid, 0) <= 0]
        neg = rng.sample(pool, min(negatives_per_query, len(pool)))
        negs = [PointwiseExample(q, d, 0) for d in neg]
        out += [[PointwiseExample(q, corpus[d], 1), *negs] for d in pos]
    if skipped:
        log.info("%d training queries had no judged-relevant document or no candidates; skipped", skipped)
    rng.shuffle(out)
    return out


def pointwise_examples(groups: Sequence[Sequence[PointwiseExample]], seed: int) -> list[PointwiseExample]:
    """The examples of :func:`pointwise_groups`, each document once, shuffled (for a per-document loss)."""
    seen: set[tuple[str, str]] = set()
    out: list[PointwiseExample] = []
    for ex in (ex for grp in groups for ex in grp):
        if (ex.query.qid, ex.doc.docid) not in seen:
            seen.add((ex.query.qid, ex.doc.docid))
            out.append(ex)
    random.Random(seed + 1).shuffle(out)
    return out


def ranked_groups(queries: Sequence[Query], ranking: Run, head: int, sampled: int,
                  seed: int) -> list[list[PointwiseExample]]:
    """Per query, a group of documents in the ranking's order (best first): its first ``head`` documents and
    ``sampled`` more drawn from the rest of the ranking (labels: 1 for the head, 0 for the rest)."""
    rng = random.Random(seed)
    out: list[list[PointwiseExample]] = []
    for q in queries:
        if q.qid not in ranking:
            continue
        docs = [sd.doc for sd in ranking[q.qid].docs]
        rest = list(range(head, len(docs)))
        pos = sorted(rng.sample(rest, min(sampled, len(rest))))
        chosen = [*range(min(head, len(docs))), *pos]
        if len(chosen) >= 2:
            out.append([PointwiseExample(q, docs[i], int(i < head)) for i in chosen])
    rng.shuffle(out)
    return out


def listwise_examples(queries: Sequence[Query], qrels: Sequence[Qrel], candidates: Run, corpus: Mapping[str, Doc],
                      window: int, seed: int, teacher: bool = False) -> list[ListwiseExample]:
    """Windows of ``window`` documents in random order; target = by relevance grade (or the teacher's order)."""
    rng = random.Random(seed)
    g = grades(qrels)
    out: list[ListwiseExample] = []
    for q in queries:
        if q.qid not in candidates:
            continue
        ranked = [sd.doc for sd in candidates[q.qid].docs]
        if teacher:
            chosen = ranked[:window]
            rank_of = {d.docid: i for i, d in enumerate(chosen)}
            key = {d.docid: -rank_of[d.docid] for d in chosen}
        else:
            rel = [corpus[d] for d, r in g.get(q.qid, {}).items() if r > 0 and d in corpus]
            if not rel:
                continue
            rel = sorted(rel, key=lambda d: (-g[q.qid][d.docid], rng.random()))[: max(1, window // 3)]
            seen = {d.docid for d in rel}
            rest = [d for d in ranked if d.docid not in seen][: window - len(rel)]
            chosen = rel + rest
            key = {d.docid: g.get(q.qid, {}).get(d.docid, 0) for d in chosen}
        if len(chosen) < 2:
            continue
        shown = chosen[:]
        rng.shuffle(shown)
        target = tuple(sorted(range(len(shown)), key=lambda i: (-key[shown[i].docid], i)))
        out.append(ListwiseExample(q, tuple(shown), target))
    rng.shuffle(out)
    return out
