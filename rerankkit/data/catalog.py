"""The dataset catalog: ``load_dataset(name)`` for named benchmarks (the ``DATASETS`` registry of manifests)
and local collections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..registry import Registry
from .beir import BeirDataset
from .bright import BrightDataset
from .dataset import Dataset
from .local import LocalDataset
from .manifests import load_manifests
from .noveleval import NovelEvalDataset
from .trecdl import TrecDLDataset

log = logging.getLogger(__name__)

#: manifest ``kind`` -> loader class (plugins may add kinds)
LOADERS: dict[str, Callable[..., Dataset]] = {
    "trec-dl": TrecDLDataset,
    "beir": BeirDataset,
    "bright": BrightDataset,
    "noveleval": NovelEvalDataset,
}

def _builtin(registry: Registry[Mapping[str, Any]]) -> None:
    for name, table in load_manifests().items():
        registry.register(name, table, tuple(table.get("aliases", ())))


#: name -> manifest table (from ``datasets/*.toml``, read on first use); plugins register through
#: ``rerankkit.datasets``
DATASETS: Registry[Mapping[str, Any]] = Registry("dataset", "rerankkit.datasets", builtin=_builtin)


def load_dataset(name: str, **options: Any) -> Dataset:
    """A dataset by registry name (``trec-dl-2019/passage``, ``beir/scifact``, ``bright/biology``, ...)
    or a local path (``path/to/folder``, ``corpus.jsonl``, or ``local:PATH``).

    ``options`` go to the loader: ``split=`` for BEIR and local folders, ``long=``/``qrels=`` for BRIGHT.
    """
    if isinstance(name, Dataset):
        return name
    if name.startswith("local:"):
        return LocalDataset(name[len("local:"):], **options)
    if name not in DATASETS and _looks_like_path(name):
        return LocalDataset(name, **options)
    canonical = DATASETS.resolve(name)
    manifest = DATASETS.get(canonical)
    kind = manifest["kind"]
    if kind not in LOADERS:
        from ..errors import ConfigError

        raise ConfigError(f"dataset {canonical!r}: no loader for kind {kind!r} (known: {', '.join(LOADERS)})")
    return LOADERS[kind](canonical, manifest, **options)


def dataset_names() -> list[str]:
    return DATASETS.names()


def _looks_like_path(name: str) -> bool:
    p = Path(name).expanduser()
    return p.exists() or name.startswith((".", "/", "~")) or p.suffix in (".jsonl", ".tsv", ".gz", ".json")
