"""Training data from generated queries: DUQGen labels (the generating document is the positive, hard negatives
from the first stage) or a teacher's ranking of the first-stage candidates (distillation)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..data import read_run
from ..errors import ConfigError, InputError
from ..train.features import TrainingData
from ..types import Doc, Qrel, Query, Ranking, Run
from .config import NegativeSettings, TeacherSettings

log = logging.getLogger(__name__)


def duqgen_data(queries: Sequence[Query], source: Mapping[str, str], first_stage: Run, corpus: Mapping[str, Doc],
                neg: NegativeSettings, eval_qids: set[str]) -> TrainingData:
    """Each query's generating document is its one positive; negatives are drawn from its first-stage ranks
    ``skip + 1 .. depth`` (the positive left out). Held-out queries are reranked from the whole first stage."""
    qrels = [Qrel(q.qid, source[q.qid], 1) for q in queries]
    pools = []
    for q in queries:
        docs = first_stage[q.qid].docs if q.qid in first_stage else ()
        pools.append(Ranking(q, tuple(d for d in docs[neg.skip : neg.depth] if d.docid != source[q.qid])))
    return TrainingData(list(queries), qrels, Run(pools), corpus, eval_qids, ranked=False,
                        holdout_candidates=first_stage)


def teacher_ranking(queries: Sequence[Query], first_stage: Run, teacher: TeacherSettings,
                    corpus: Mapping[str, Doc], cache: str | None, progress: bool = False) -> Run:
    """The teacher's order of each query's first ``teacher.depth`` first-stage candidates: a preset reranks
    them (answers from ``cache`` when it has them), or a TREC run made elsewhere is read (every query must
    be in it; its documents must be in the collection)."""
    top = Run([first_stage[q.qid].top(teacher.depth) for q in queries if q.qid in first_stage])
    if teacher.preset:
        from ..reranker import Reranker

        rr = Reranker(teacher.preset, cache=cache, **teacher.overrides)
        try:
            return rr.rerank_run(top, depth=teacher.depth, progress=progress)
        finally:
            rr.close()
    if not teacher.run:
        raise ConfigError("teacher: give a preset or a run")
    run = read_run(teacher.run, queries={q.qid: q for q in queries}, docs=corpus)
    missing = [q.qid for q in queries if q.qid not in run]
    if missing:
        raise InputError(f"teacher run {teacher.run} has no ranking for {len(missing)} of {len(queries)} "
                         f"generated queries (e.g. {missing[:3]}); rank queries.jsonl's queries")
    unknown = sorted({sd.docid for r in run.values() for sd in r.docs if sd.docid not in corpus})
    if unknown:
        raise InputError(f"teacher run {teacher.run} ranks {len(unknown)} documents that are not in the "
                         f"collection (e.g. {unknown[:3]})")
    return Run([run[q.qid].top(teacher.depth) for q in queries])


def teacher_data(queries: Sequence[Query], ranking: Run, first_stage: Run, corpus: Mapping[str, Doc],
                 teacher: TeacherSettings, eval_qids: set[str]) -> TrainingData:
    """Pseudo-judgments from the teacher's ranking: grade 2 for its top ``positives``, grade 1 for the next
    ``skip`` (never negatives), 0 below. The ranking itself is the order to learn (RankNet, FIRST);
    contrastive and per-document losses take the grade-2 documents as positives and negatives from the
    grade-0 ones. Held-out queries are reranked from the first stage (as at test time)."""
    qrels: list[Qrel] = []
    for q in queries:
        if q.qid not in ranking:
            continue
        for i, sd in enumerate(ranking[q.qid].docs):
            grade = 2 if i < teacher.positives else 1 if i < teacher.positives + teacher.skip else 0
            qrels.append(Qrel(q.qid, sd.docid, grade))
    return TrainingData(list(queries), qrels, ranking, corpus, eval_qids, ranked=True,
                        holdout_candidates=Run([first_stage[q.qid].top(teacher.depth) for q in queries
                                                if q.qid in first_stage]))


def training_documents(data: TrainingData) -> set[str]:
    """Every document the training data can show the model (judged ones and candidates)."""
    return {r.docid for r in data.qrels} | {sd.docid for r in data.candidates.values() for sd in r.docs}
