"""Turning training examples into model inputs (token ids) with the preset's own prompt."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data import load_dataset, read_run
from ..errors import ConfigError
from ..reranker import Reranker
from ..strategies.base import STRATEGIES, QueryContext, Strategy
from ..strategies.truncation import Truncator
from ..types import Doc, Qrel, Query, Run
from .config import TrainConfig
from .examples import (
    ListwiseExample,
    PointwiseExample,
    listwise_examples,
    pointwise_examples,
    pointwise_groups,
    ranked_groups,
)
from .losses import (
    contrastive_loss,
    grouped_ranknet_loss,
    lm_loss,
    pointwise_loss,
    ranknet_loss,
    yes_no_margin,
)

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Token ids of a few examples and what their loss needs."""

    objective: str
    seqs: list[list[int]]
    labels: list[int] = field(default_factory=list)  # pointwise
    groups: list[int] = field(default_factory=list)  # pointwise contrastive/ranknet: sizes of consecutive groups
    ranked: bool = False  # pointwise groups are in the order to learn (RankNet), not positive-first
    pos_ids: list[int] = field(default_factory=list)
    neg_ids: list[int] = field(default_factory=list)
    targets: list[list[int]] = field(default_factory=list)  # FIRST: target token ids per row
    id_tokens: list[list[int]] = field(default_factory=list)  # FIRST: first token of each identifier
    orders: list[list[int]] = field(default_factory=list)  # FIRST: target order (shown positions)
    ranknet_weight: float = 1.0

    def loss(self, torch: Any, backend: Any) -> Any:
        if self.objective == "pointwise":
            if backend.kind == "seq2seq":
                logits = backend._seq2seq_logits(self.seqs, [[] for _ in self.seqs])[:, 0, :]
            else:
                logits = backend._causal_forward(self.seqs, keep=1).logits[:, -1, :]
            if self.groups:
                margins = yes_no_margin(torch, logits, self.pos_ids, self.neg_ids)
                if self.ranked:
                    return grouped_ranknet_loss(torch, margins, self.groups)
                return contrastive_loss(torch, margins, self.groups)
            labels = torch.tensor(self.labels, device=logits.device)
            return pointwise_loss(torch, logits, self.pos_ids, self.neg_ids, labels)
        total = 0.0
        for seq, tgt, idt, order in zip(self.seqs, self.targets, self.id_tokens, self.orders):
            logits = backend._causal_forward([seq + tgt], keep=len(tgt) + 1).logits[0, :-1, :]
            lm = lm_loss(torch, logits, tgt)
            rn = ranknet_loss(torch, logits[0, idt], order)
            total = total + lm + self.ranknet_weight * rn
        return total / len(self.seqs)


@dataclass
class TrainingData:
    """What a training run learns from, however it was made (a dataset split and its qrels, or
    :mod:`rerankkit.adapt`'s synthetic queries).

    ``qrels`` grade documents of ``queries`` (grade > 0: a positive); ``candidates[qid]`` are the documents
    negatives are drawn from, and with ``ranked`` their order is the ranking to learn (a teacher's).
    ``holdout_candidates`` are what held-out queries are reranked from (default: ``candidates``).
    ``eval_qids``: the evaluation queries that must not be trained on."""

    queries: list[Query]
    qrels: list[Qrel]
    candidates: Run
    corpus: Mapping[str, Doc]
    eval_qids: set[str]
    ranked: bool = False
    holdout_candidates: Run | None = None


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """``cfg``'s dataset split, its qrels and its candidates (mined negatives or ``teacher_run``); refuses a
    split that shares queries with the evaluation split before any retrieval runs."""
    ds = load_dataset(cfg.dataset, split=cfg.split)
    queries = ds.queries()[: cfg.max_queries] if cfg.max_queries else ds.queries()
    eval_ds = load_dataset(cfg.eval_dataset or cfg.dataset, split=cfg.eval_split)
    eval_qids = {q.qid for q in eval_ds.queries()}
    from .config import check_no_overlap

    check_no_overlap({q.qid for q in queries}, eval_qids, cfg.dataset)  # before any expensive work
    corpus = {d.docid: d for d in ds.corpus()}
    candidates = _candidates(cfg, ds, queries, corpus)
    return TrainingData(list(queries), ds.qrels(), candidates, corpus, eval_qids, ranked=cfg.teacher_run is not None)


def build_features(cfg: TrainConfig, reranker: Reranker,
                   data: TrainingData | None = None) -> tuple[list[Batch], dict[str, Any]]:
    """Examples for ``cfg`` (from ``data``, else :func:`load_training_data`) rendered with ``reranker``'s
    template and tokenised by its backend."""
    data = data if data is not None else load_training_data(cfg)
    qrels, corpus, candidates = data.qrels, data.corpus, data.candidates
    info: dict[str, Any] = {"train_qids": {q.qid for q in data.queries}, "eval_qids": set(data.eval_qids)}
    queries, held = split_holdout(data.queries, cfg.holdout_queries, cfg.seed)
    info["train_qids"] = {q.qid for q in queries}
    if held:
        held_ids = {q.qid for q in held}
        pool = data.holdout_candidates if data.holdout_candidates is not None else candidates
        info["holdout"] = Holdout(held, Run([pool[q.qid] for q in held if q.qid in pool]),
                                  [r for r in qrels if r.qid in held_ids])
    objective = training_objective(cfg, reranker.strategy)
    backend = reranker.backend
    ctx = QueryContext(backend, Truncator(backend, cfg.max_doc_tokens))
    if objective == "pointwise" and cfg.pointwise_loss == "ranknet":
        if not data.ranked:
            raise ConfigError("pointwise_loss 'ranknet' learns a ranking: give a teacher (teacher_run, or "
                              "rerankkit adapt's teacher), or use 'contrastive' with judged positives")
        groups = ranked_groups(queries, candidates, cfg.positives_per_query, cfg.negatives_per_query, cfg.seed)
        exs: list[Any] = [ex for g in groups for ex in g]
        batches = _group_batches(cfg, reranker, ctx, groups, ranked=True)
    elif objective == "pointwise":
        groups = pointwise_groups(queries, qrels, candidates, corpus, cfg.positives_per_query,
                                  cfg.negatives_per_query, cfg.seed, cfg.hard_positives)
        if cfg.pointwise_loss == "contrastive":
            groups = [g for g in groups if len(g) > 1]  # a positive without negatives teaches nothing here
            exs = [ex for g in groups for ex in g]
            batches = _group_batches(cfg, reranker, ctx, groups)
        else:
            exs = pointwise_examples(groups, cfg.seed)
            batches = _pointwise_batches(cfg, reranker, ctx, exs)
    else:
        exs = listwise_examples(queries, qrels, candidates, corpus, cfg.window, cfg.seed, teacher=data.ranked)
        batches = _first_batches(cfg, reranker, ctx, exs)
    if not batches:
        raise ConfigError(f"no training examples could be built from {cfg.dataset} split {cfg.split!r}")
    info["examples"] = len(exs)
    info["documents"] = {ex.doc.docid for ex in exs} if objective == "pointwise" else \
        {d.docid for ex in exs for d in ex.docs}
    log.info("%d training examples in %d batches", len(exs), len(batches))
    return batches, info


@dataclass(frozen=True)
class Holdout:
    """Training-split queries kept out of training: their candidates and qrels measure the adapter."""

    queries: list[Any]
    candidates: Run
    qrels: list[Any]


def split_holdout(queries: Sequence[Any], n: int, seed: int) -> tuple[list[Any], list[Any]]:
    """``n`` queries drawn with ``seed`` for the held-out check, and the rest for training."""
    if n <= 0:
        return list(queries), []
    if n >= len(queries):
        raise ConfigError(f"holdout_queries={n} leaves no training queries (the split has {len(queries)})")
    held = set(random.Random(seed).sample([q.qid for q in queries], n))
    return [q for q in queries if q.qid not in held], [q for q in queries if q.qid in held]


def _candidates(cfg: TrainConfig, ds: Any, queries: Sequence[Any], corpus: dict[str, Any]) -> Any:
    if cfg.teacher_run:
        return read_run(cfg.teacher_run, queries={q.qid: q for q in queries}, docs=corpus)
    from ..retrievers import Retriever

    retriever = Retriever(cfg.negatives)
    retriever.index(corpus.values())
    return retriever.search(queries, k=cfg.negatives_depth)


def training_objective(cfg: TrainConfig, strategy: Strategy) -> str:
    """The objective the preset's strategy is trained with (it declares it); ``cfg.objective``, when given,
    must agree."""
    objective = strategy.training_objective
    if objective is None:
        trainable = sorted(n for n, cls in STRATEGIES.items() if cls.training_objective)
        raise ConfigError(f"preset {cfg.preset!r} uses strategy {strategy.name!r}, which cannot be fine-tuned; "
                          f"strategies that can: {', '.join(trainable)}")
    if cfg.objective and cfg.objective != objective:
        raise ConfigError(f"objective {cfg.objective!r} does not fit preset {cfg.preset!r}: its strategy "
                          f"{strategy.name!r} is trained with objective {objective!r}")
    return objective


def _pointwise_batches(cfg: TrainConfig, rr: Reranker, ctx: QueryContext, exs: list[PointwiseExample],
                       size: int | None = None) -> list[Batch]:
    be = rr.backend
    batches: list[Batch] = []
    size = size or cfg.batch_size
    for i in range(0, len(exs), size):
        chunk = exs[i : i + size]
        seqs, pos, neg = [], None, None
        for ex in chunk:
            shown = rr.strategy.training_prompt(ex.query, [ex.doc], [0], ctx)
            text = be.render(shown.prompt)
            seqs.append(be.encode(text))
            if pos is None:
                pos = sorted({be.continuation_ids(text, c)[0] for c in shown.positive})
                neg = sorted({be.continuation_ids(text, c)[0] for c in shown.negative})
        batches.append(Batch("pointwise", seqs, labels=[ex.label for ex in chunk], pos_ids=pos or [], neg_ids=neg or []))
    return batches


def _group_batches(cfg: TrainConfig, rr: Reranker, ctx: QueryContext,
                   groups: list[list[PointwiseExample]], ranked: bool = False) -> list[Batch]:
    """Whole groups per batch (about ``batch_size`` documents, at least one group); ``ranked``: each group
    is in the order to learn (RankNet), else its first document is the positive (contrastive)."""
    packed: list[list[list[PointwiseExample]]] = []
    for grp in groups:
        if packed and sum(map(len, packed[-1])) + len(grp) <= cfg.batch_size:
            packed[-1].append(grp)
        else:
            packed.append([grp])
    batches: list[Batch] = []
    for chunk in packed:
        flat = [ex for g in chunk for ex in g]
        (b,) = _pointwise_batches(cfg, rr, ctx, flat, size=len(flat))
        b.groups = [len(g) for g in chunk]
        b.ranked = ranked
        batches.append(b)
    return batches


def _first_batches(cfg: TrainConfig, rr: Reranker, ctx: QueryContext, exs: list[ListwiseExample]) -> list[Batch]:
    be = rr.backend
    batches: list[Batch] = []
    for i in range(0, len(exs), cfg.batch_size):
        b = Batch("first", [], ranknet_weight=cfg.ranknet_weight)
        for ex in exs[i : i + cfg.batch_size]:
            shown = rr.strategy.training_prompt(ex.query, ex.docs, ex.target, ctx)
            text = be.render(shown.prompt)
            b.seqs.append(be.encode(text))
            b.targets.append(be.continuation_ids(text, shown.target))
            b.id_tokens.append([be.continuation_ids(text, x)[0] for x in shown.labels])
            b.orders.append(list(ex.target))
        batches.append(b)
    return batches
