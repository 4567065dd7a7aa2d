"""Training configuration (YAML) and the no-overlap rule between training and evaluation queries."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import build_options, option, parse_value

OBJECTIVES = ("pointwise", "first")  # what a strategy's ``training_objective`` may be
POINTWISE_LOSSES = ("bce", "contrastive", "ranknet")


@dataclass
class LoraSettings:
    r: int = option(16, bounds=(1, None), help="LoRA rank")
    alpha: int = option(32, bounds=(1, None), help="LoRA scaling (alpha / r multiplies the update)")
    dropout: float = option(0.05, bounds=(0.0, 1.0), help="dropout on the LoRA input")
    target_modules: list[str] | str = option("all-linear", help="modules to adapt: a list of names, or all-linear")


@dataclass
class TrainConfig:
    """What to train, on which queries, and how (one option per field; ``rerankkit show``-style help on each).

    Training never uses evaluation queries: a config whose training split overlaps the evaluation split of
    the same dataset is refused with the overlap count."""

    preset: str = option(help="the reranker preset whose strategy, template and model are fine-tuned (its prompt "
                              "is the training prompt, so the adapter is used with the same preset)")
    output_dir: str = option(help="where checkpoints, the adapter, losses and the summary are written")
    objective: str = option("", choices=("", *OBJECTIVES),
                            help="the loss; empty: the one the preset's strategy declares (pointwise or first)")
    dataset: str = option("beir/nfcorpus", help="training queries, qrels and corpus")
    split: str = option("dev", help="the training split")
    eval_dataset: str | None = option(None, help="the dataset whose evaluation queries must not be trained on "
                                                 "(none: dataset)")
    eval_split: str = option("test", help="the evaluation split that must not overlap the training one")
    negatives: str | None = option("bm25", help="a retriever preset mining hard negatives (judged-relevant "
                                                "documents excluded)")
    negatives_depth: int = option(30, bounds=(1, None), help="retrieved documents negatives are drawn from")
    teacher_run: str | None = option(None, help="a TREC run to distil from instead (top documents are positives "
                                                "for pointwise; its order is the target permutation for first)")
    negatives_per_query: int = option(3, bounds=(0, None), help="negatives sampled per query")
    positives_per_query: int = option(1, bounds=(1, None), help="positives per query")
    max_queries: int | None = option(None, bounds=(1, None), help="only the first N training queries")
    pointwise_loss: str = option("bce", choices=POINTWISE_LOSSES,
                                 help="bce: yes/no cross-entropy per document; contrastive: softmax over one "
                                      "positive and its query's negatives (localized contrastive estimation); "
                                      "ranknet: RankNet over a teacher's order of positives_per_query top "
                                      "documents and negatives_per_query sampled below them")
    hard_positives: bool = option(True, help="prefer judged-relevant documents the retriever found")
    holdout_queries: int = option(0, bounds=(0, None),
                                  help="training-split queries kept out of training and measured before/after")
    holdout_depth: int = option(20, bounds=(1, None), help="candidates reranked for the held-out nDCG@10")
    max_doc_tokens: int = option(192, bounds=(1, None), help="tokens per document in training prompts")
    window: int = option(10, bounds=(2, None), help="first: documents per training window")
    ranknet_weight: float = option(1.0, bounds=(0.0, None), help="first: weight of the RankNet term next to the LM loss")
    learning_rate: float = option(2e-4, bounds=(0.0, None), help="AdamW learning rate")
    batch_size: int = option(8, bounds=(1, None), help="examples (pointwise: documents) per step")
    grad_accum: int = option(1, bounds=(1, None), help="batches accumulated per optimizer step")
    epochs: int = option(1, bounds=(1, None), help="passes over the examples")
    max_steps: int | None = option(None, bounds=(1, None), help="stop after N steps (none: epochs decide)")
    max_minutes: float | None = option(None, bounds=(0.0, None), help="stop (with a checkpoint) after N minutes")
    warmup_steps: int = option(10, bounds=(0, None), help="linear learning-rate warm-up")
    seed: int = option(13, help="seed of sampling, shuffling and initialisation")
    dtype: str = option("fp32", help="model weights (the hf backend's dtype); bf16 trains under bf16 autocast "
                                     "with fp32 LoRA weights")
    autocast_bf16: bool = option(False, help="compute under bf16 autocast on CPU")
    checkpoint_every: int = option(50, bounds=(1, None), help="steps between checkpoints")
    log_every: int = option(5, bounds=(1, None), help="steps between loss log lines")
    threads: int | None = option(None, bounds=(1, None), help="torch CPU threads (none: torch's default)")
    lora: LoraSettings = option(default_factory=LoraSettings, help="LoRA settings: r, alpha, dropout, target_modules")
    overrides: dict[str, Any] = option(default_factory=dict,
                                       help="extra Reranker overrides for the preset (e.g. model=...)")

    def validate(self) -> TrainConfig:
        if self.negatives is None and self.teacher_run is None:
            raise ConfigError("give `negatives` (a retriever preset) or `teacher_run` (a TREC run)")
        return self


def read_train_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a training config file: syntax errors, control characters and repeated
    keys are a :class:`ConfigError` naming the line."""
    from ..bench.yamllines import load_yaml

    p = Path(path)
    raw = load_yaml(p)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{p}: a training config is a mapping of fields, not a {type(raw).__name__}")
    return dict(raw)


def load_train_config(path: str | Path) -> TrainConfig:
    return config_from_dict(read_train_yaml(path), str(path))


def config_from_dict(raw: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping (YAML values, or strings from ``--set``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a training config is a mapping of fields, not a {type(raw).__name__}")
    raw = dict(raw)
    lora = raw.pop("lora", None) or {}
    if isinstance(lora, str):
        lora = parse_value(lora, dict, f"{where} lora")
    if isinstance(lora, LoraSettings):
        lora = dataclasses.asdict(lora)
    if not isinstance(lora, Mapping):
        raise ConfigError(f"{where}: 'lora' must be a mapping of r, alpha, dropout, target_modules")
    raw["lora"] = build_options(LoraSettings, lora, owner=f"{where} lora", label="lora", noun="field")
    return build_options(TrainConfig, raw, owner=where, label=where, noun="field")


def check_no_overlap(train_qids: set[str], eval_qids: set[str], dataset: str) -> None:
    """Refuse training queries that are also evaluation queries of the same dataset."""
    overlap = train_qids & eval_qids
    if overlap:
        raise ConfigError(
            f"{len(overlap)} training queries of {dataset} are also evaluation queries "
            f"(e.g. {sorted(overlap)[:3]}); refusing to train on evaluation data"
        )
