"""Data: TREC/JSONL readers and writers, the dataset catalog (``load_dataset``) and the data root."""

from __future__ import annotations

from .bright import apply_exclusions
from .candidates import read_candidates, write_candidates
from .catalog import DATASETS, LOADERS, dataset_names, load_dataset
from .dataset import Dataset, attach_texts
from .formats import read_jsonl_corpus, read_jsonl_queries, read_tsv_corpus
from .io import DecodeStats
from .local import LocalDataset
from .paths import candidate_roots, data_root
from .trec import read_qrels, read_run, read_topics, write_run

__all__ = [
    "DATASETS", "LOADERS", "Dataset", "DecodeStats", "LocalDataset", "apply_exclusions", "attach_texts",
    "candidate_roots", "data_root", "dataset_names", "load_dataset", "read_candidates", "read_jsonl_corpus",
    "read_jsonl_queries", "read_qrels", "read_run", "read_topics", "read_tsv_corpus", "write_candidates",
    "write_run",
]
