"""Training configuration (YAML) and the no-overlap rule between training and evaluation queries."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

OBJECTIVES = ("pointwise", "first")
POINTWISE_LOSSES = ("bce", "contrastive")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


@dataclass
class TrainConfig:
    """What to train, on which queries, and how.

    ``preset``: the reranker preset whose strategy, template and model are fine-tuned (its prompt is the
    training prompt, so the adapter is used with the same preset). ``dataset``/``split``: training queries
    and qrels. ``eval_dataset``/``eval_split``: the evaluation queries that must not be trained on.
    ``negatives``: a retriever preset mining hard negatives (top ``negatives_depth``, judged-relevant
    documents excluded), or ``teacher_run``: a TREC run to distil from (its top documents are positives
    for pointwise, its order is the target permutation for FIRST). ``pointwise_loss``: ``bce`` (yes/no
    cross-entropy per document) or ``contrastive`` (softmax over one positive and its query's negatives,
    localized contrastive estimation). ``hard_positives``: prefer judged-relevant documents the retriever
    found. ``holdout_queries``: training-split queries kept out of training whose nDCG@10 (top
    ``holdout_depth`` candidates) is measured before and after, so a recipe is judged without the test set.
    """

    preset: str
    output_dir: str
    objective: str = "pointwise"
    dataset: str = "beir/nfcorpus"
    split: str = "dev"
    eval_dataset: str | None = None
    eval_split: str = "test"
    negatives: str | None = "bm25"
    negatives_depth: int = 30
    teacher_run: str | None = None
    negatives_per_query: int = 3
    positives_per_query: int = 1
    max_queries: int | None = None
    pointwise_loss: str = "bce"
    hard_positives: bool = True
    holdout_queries: int = 0
    holdout_depth: int = 20
    max_doc_tokens: int = 192
    window: int = 10  # FIRST: documents per training window
    ranknet_weight: float = 1.0  # FIRST: weight of the RankNet term next to the LM loss
    learning_rate: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int | None = None
    max_minutes: float | None = None
    warmup_steps: int = 10
    seed: int = 13
    dtype: str = "fp32"  # model weights; "bf16" trains under bf16 autocast with fp32 LoRA weights
    autocast_bf16: bool = False
    checkpoint_every: int = 50
    log_every: int = 5
    threads: int | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    overrides: dict[str, Any] = field(default_factory=dict)  # extra Reranker overrides (e.g. model=)

    def validate(self) -> TrainConfig:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        if self.pointwise_loss not in POINTWISE_LOSSES:
            raise ConfigError(f"pointwise_loss must be one of {POINTWISE_LOSSES}, not {self.pointwise_loss!r}")
        if self.holdout_queries < 0 or self.holdout_depth < 1:
            raise ConfigError("holdout_queries must be >= 0 and holdout_depth >= 1")
        if self.negatives is None and self.teacher_run is None:
            raise ConfigError("give `negatives` (a retriever preset) or `teacher_run` (a TREC run)")
        return self


def load_train_config(path: str | Path) -> TrainConfig:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {p}: {exc}") from None
    return config_from_dict(raw, str(p))


def config_from_dict(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    raw = dict(raw)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        import difflib

        hints = [f"{u} (did you mean {', '.join(difflib.get_close_matches(u, known, n=2))}?)" for u in unknown]
        raise ConfigError(f"{where}: unknown field(s): {'; '.join(hints)}")
    for req in ("preset", "output_dir"):
        if req not in raw:
            raise ConfigError(f"{where}: missing required field {req!r}")
    lora = raw.pop("lora", None) or {}
    try:
        cfg = TrainConfig(**raw, lora=LoraSettings(**lora))
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cfg.validate()


def check_no_overlap(train_qids: set[str], eval_qids: set[str], dataset: str) -> None:
    """Refuse training queries that are also evaluation queries of the same dataset."""
    overlap = train_qids & eval_qids
    if overlap:
        raise ConfigError(
            f"{len(overlap)} training queries of {dataset} are also evaluation queries "
            f"(e.g. {sorted(overlap)[:3]}); refusing to train on evaluation data"
        )
