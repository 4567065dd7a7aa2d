"""The ``rerankkit adapt`` configuration (YAML): one section per stage, every field declared with ``option``.

A misspelt key anywhere (a section, a field, a training field, a backend option, a reranker override) is a
ConfigError naming the closest valid one, raised by :func:`load_adapt_config` before any model loads.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..options import build_options, option, parse_value
from ..train.config import TrainConfig, config_from_dict
from .cluster import ENGINES


@dataclass
class CorpusSettings:
    datasets: list[str] = option(default_factory=list,
                                 help="the target collection: dataset names; documents come from their corpus, or, "
                                      "for a dataset without one (TREC DL), from the texts of its candidate lists")
    candidates: list[str] = option(default_factory=lambda: ["bm25", "contriever"],
                                   help="candidate lists whose texts form the collection of a dataset without a "
                                        "corpus (their passages were selected by that dataset's test queries)")
    min_chars: int = option(300, bounds=(0, None),
                            help="shorter documents are never sampled (DUQGen's released code: 300 characters)")
    max_docs: int | None = option(None, bounds=(1, None), help="only the first N documents (for quick checks)")


@dataclass
class SamplingSettings:
    documents: int = option(300, bounds=(1, None), help="N: documents sampled, one query generated for each")
    clusters: int = option(100, bounds=(1, None), help="K: k-means clusters (at most N)")
    temperature: float = option(1.0, bounds=(0.0, None),
                                help="T of the softmax over a document's cosine to its centroid")
    rounds: int = option(5, bounds=(1, None), help="probabilistic draws pooled per cluster before the MMR pick "
                                                   "(DUQGen's code: 5; 1: keep the single draw)")
    mmr_lambda: float = option(1.0, bounds=(0.0, 1.0),
                               help="MMR trade-off: 1 keeps the most central of the pool, lower spreads it")
    kmeans: str = option("auto", choices=ENGINES, help="k-means implementation: faiss when installed, else numpy")
    iterations: int = option(100, bounds=(1, None), help="k-means iterations (DUQGen's code: 100)")
    embedder: str = option("dense-minilm", help="a dense retriever preset whose encoder embeds the documents")
    embedder_overrides: dict[str, Any] = option(default_factory=dict, help="overrides for the embedder preset")


@dataclass
class GenerationSettings:
    template: str = option("duqgen", help="a query-generation template (name or YAML path)")
    fewshot_file: str | None = option(None, help="JSONL of {document, query} pairs replacing the template's "
                                                 "examples (never queries of the evaluation split)")
    backend: str = option("hf", help="the backend that generates (any with GENERATE)")
    model: str = option("packaged:smollm2-135m-instruct", help="the generator model")
    options: dict[str, Any] = option(default_factory=dict, help="backend options (checked before loading)")
    max_new_tokens: int = option(32, bounds=(1, None), help="tokens generated per query")
    max_doc_tokens: int = option(256, bounds=(1, None), help="tokens of the document a query is written for")
    fewshot_doc_tokens: int | None = option(None, bounds=(1, None),
                                            help="tokens of each few-shot document (none: max_doc_tokens)")
    temperature: float = option(0.0, bounds=(0.0, None), help="0: greedy (as DUQGen); else seeded sampling")
    batch: int = option(16, bounds=(1, None), help="prompts per backend call (each call's answers are cached)")
    cache: str | None = option(None, help="answer cache (SQLite); none: OUTPUT_DIR/answers.sqlite")
    queries_file: str | None = option(None, help="use these queries instead of generating: JSONL of "
                                                 "{qid?, docid, query} (a document id must be in the collection)")


@dataclass
class NegativeSettings:
    retriever: str = option("bm25", help="first-stage retriever preset searching the collection for each query")
    retriever_overrides: dict[str, Any] = option(default_factory=dict, help="overrides for the retriever preset")
    depth: int = option(30, bounds=(1, None), help="documents retrieved per generated query")
    skip: int = option(0, bounds=(0, None), help="top-ranked documents never used as negatives (may be relevant)")
    per_query: int = option(4, bounds=(1, None), help="negatives per query, drawn from ranks skip+1..depth")


@dataclass
class TeacherSettings:
    preset: str | None = option(None, help="a reranker preset that ranks each query's first-stage candidates")
    overrides: dict[str, Any] = option(default_factory=dict, help="overrides for the teacher preset")
    cache: str | None = option(None, help="the teacher's answer cache (an answer cache made elsewhere answers "
                                          "without model calls)")
    run: str | None = option(None, help="a TREC run of the teacher over the generated queries (qids of "
                                        "queries.jsonl), made elsewhere; instead of preset")
    depth: int = option(20, bounds=(2, None), help="first-stage candidates the teacher ranks per query")
    positives: int = option(1, bounds=(1, None), help="the teacher's top documents that count as relevant")
    skip: int = option(4, bounds=(0, None), help="teacher ranks after the positives never used as negatives")

    @property
    def active(self) -> bool:
        return bool(self.preset or self.run)

    def validate(self) -> TeacherSettings:
        if self.preset and self.run:
            raise ConfigError("teacher: give preset or run, not both")
        return self


# training fields that adapt sets itself (from its own sections); a config may not set them under `train`
OWNED = ("dataset", "split", "eval_dataset", "eval_split", "negatives", "negatives_depth", "teacher_run",
         "max_queries")


@dataclass
class AdaptConfig:
    """DUQGen domain adaptation, or distillation from a teacher, of a reranker preset (see docs/training.md)."""

    output_dir: str = option(help="where every stage's files, the adapter and adapt.json are written")
    train: TrainConfig = option(help="the training settings (rerankkit train's fields, without dataset, split, "
                                     "negatives or teacher_run, which adapt provides)")
    corpus: CorpusSettings = option(default_factory=CorpusSettings, help="the target collection")
    eval_datasets: list[str] = option(default_factory=list,
                                      help="datasets whose evaluation queries must never be trained on "
                                           "(none: the corpus datasets)")
    eval_split: str = option("test", help="the evaluation split of eval_datasets")
    eval_documents: str = option("allow", choices=("allow", "refuse"),
                                 help="training documents judged for an evaluation query: allow (counted and "
                                      "reported; unsupervised adaptation uses the target documents) or refuse")
    seed: int = option(13, help="seed of clustering, sampling, negatives and (unless train.seed is set) training")
    sampling: SamplingSettings = option(default_factory=SamplingSettings, help="DUQGen document sampling")
    generation: GenerationSettings = option(default_factory=GenerationSettings, help="few-shot query generation")
    negatives: NegativeSettings = option(default_factory=NegativeSettings, help="first-stage hard negatives")
    teacher: TeacherSettings = option(default_factory=TeacherSettings,
                                      help="distillation: the teacher whose ranking is learnt (none: DUQGen "
                                           "labels, the generating document is the positive)")
    name: str = option("", help="the preset name written to OUTPUT_DIR/preset.toml (empty: from output_dir)")

    def validate(self) -> AdaptConfig:
        if not self.corpus.datasets:
            raise ConfigError("adapt: corpus.datasets names no dataset (the target collection)")
        if self.sampling.clusters > self.sampling.documents and not self.generation.queries_file:
            raise ConfigError(f"adapt: sampling.clusters ({self.sampling.clusters}) must not exceed "
                              f"sampling.documents ({self.sampling.documents}): every cluster gives one document")
        return self

    @property
    def eval_names(self) -> list[str]:
        return self.eval_datasets or list(self.corpus.datasets)

    @property
    def preset_name(self) -> str:
        return self.name or Path(self.output_dir).name


SECTIONS: dict[str, type] = {"corpus": CorpusSettings, "sampling": SamplingSettings,
                             "generation": GenerationSettings, "negatives": NegativeSettings,
                             "teacher": TeacherSettings}


def load_adapt_config(path: str | Path, sets: Mapping[str, str] | None = None) -> AdaptConfig:
    """The config in YAML file ``path``, with ``sets`` (``section.key`` -> value strings, as ``--set``)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read adapt config {p}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{p}: an adapt config is a mapping of sections")
    raw = dict(raw)
    for key, value in (sets or {}).items():
        set_dotted(raw, key, value)
    return adapt_config_from_dict(raw, str(p))


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """``raw["a"]["b"]["c"] = value`` for ``key`` ``"a.b.c"`` (tables made as needed)."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = dict(nxt) if isinstance(nxt, Mapping) else {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def adapt_config_from_dict(raw: Mapping[str, Any], where: str = "adapt config") -> AdaptConfig:
    """A validated :class:`AdaptConfig` from a mapping (YAML values, or strings from ``--set``)."""
    raw = dict(raw)
    for name, cls in SECTIONS.items():
        if name in raw:
            raw[name] = build_options(cls, _table(raw[name], f"{where} {name}"), owner=f"{where} section {name!r}",
                                      label=name, noun="field")
    train = dict(_table(raw.get("train"), f"{where} train"))
    owned = sorted(set(train) & set(OWNED))
    if owned:
        raise ConfigError(f"{where}: train.{owned[0]} is set by adapt itself (from its corpus, negatives and "
                          f"teacher sections); remove it")
    seed = raw.get("seed", _default("seed"))
    out = str(raw.get("output_dir") or "")
    train.setdefault("seed", seed)
    train.setdefault("output_dir", str(Path(out) / "train") if out else "")
    train.update(dataset="(adapt)", split="synthetic", negatives="(adapt)")
    raw["train"] = config_from_dict(train, f"{where} train")
    return build_options(AdaptConfig, raw, owner=where, label=where, noun="field")


def _table(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = parse_value(value, dict, what)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a mapping")
    return value


def _default(name: str) -> Any:
    f = next(f for f in dataclasses.fields(AdaptConfig) if f.name == name)
    return f.default


def describe_sections() -> dict[str, type]:
    """Every declared table of the config (for ``rerankkit adapt --help-config`` and the tests)."""
    return {"adapt": AdaptConfig, **SECTIONS, "train": TrainConfig}


_ = typing  # (annotations are evaluated by options._hints)
