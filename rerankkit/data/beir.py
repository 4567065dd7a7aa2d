"""BEIR layout: ``corpus.jsonl(.gz)``, ``queries.jsonl``, ``qrels/<split>.tsv``; official zips when online."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import DataNotFoundError, InputError
from ..types import Doc, Qrel, Query
from .dataset import Dataset, judged_only
from .formats import read_jsonl_corpus, read_jsonl_queries, read_tsv_corpus
from .paths import downloads_dir, missing_data
from .trec import read_qrels, read_topics

log = logging.getLogger(__name__)
OFFLINE_VARS = ("RERANKKIT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class BeirDataset(Dataset):
    """A BEIR-layout collection; ``split`` picks ``qrels/<split>.tsv`` (queries = those judged in it)."""

    kind = "beir"

    def __init__(self, name: str, manifest: Mapping[str, Any] | None = None, split: str | None = None):
        super().__init__(name, manifest)
        self.split = split or self.manifest.get("default_split", "test")

    def _load_queries(self) -> list[Query]:
        return judged_only(read_queries_file(self._find("queries")), self._qrels)

    def _load_qrels(self) -> list[Qrel]:
        base = self.location()
        for cand in (base / "qrels" / f"{self.split}.tsv", base / f"qrels.{self.split}.tsv"):
            if cand.exists():
                return read_qrels(cand)
        have = sorted(p.stem for p in (base / "qrels").glob("*.tsv")) if (base / "qrels").is_dir() else []
        raise DataNotFoundError(f"{self.name}: no qrels for split {self.split!r} in {base / 'qrels'}"
                                f" (splits here: {', '.join(have) or 'none'})")

    def has_corpus(self) -> bool:
        try:
            self._find("corpus")
        except DataNotFoundError:
            return False
        return True

    def corpus(self) -> Iterator[Doc]:
        p = self._find("corpus")
        reader = read_tsv_corpus if ".tsv" in p.name else read_jsonl_corpus
        return reader(p, self.decode_stats)

    def _find(self, role: str) -> Path:
        base = self.location()
        names = {"corpus": ("corpus.jsonl", "corpus.jsonl.gz", "corpus.tsv", "corpus.tsv.gz"),
                 "queries": ("queries.jsonl", "queries.jsonl.gz", "queries.tsv", "queries.tsv.gz")}[role]
        for n in names:
            if (base / n).exists():
                return base / n
        raise missing_data(Path(self.manifest.get("folder", base.name)) / names[0], f"{role} of {self.name!r}",
                           self._how_to_get())

    # -- download ---------------------------------------------------------------------------------
    def _fetch_missing(self, folder: str) -> Path:
        url = self.manifest.get("url")
        if not url or _offline():
            raise missing_data(folder, f"dataset {self.name!r}", self._how_to_get())
        target = downloads_dir() / folder
        try:
            download_zip(url, target, md5=self.manifest.get("md5"))
        except OSError as exc:
            raise missing_data(folder, f"dataset {self.name!r} (download of {url} failed: {exc})",
                               self._how_to_get()) from None
        return target


def read_queries_file(path: Path) -> list[Query]:
    """Queries from JSONL (``.jsonl``) or ``qid<TAB>text`` (anything else: .tsv, .txt)."""
    return read_jsonl_queries(path) if ".jsonl" in path.name else read_topics(path)


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def download_zip(url: str, target: Path, md5: str | None = None, timeout: float = 30.0) -> Path:
    """Download a zip archive, check its md5, and extract its single top folder's contents into ``target``."""
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        zpath = Path(tmp) / "archive.zip"
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(zpath, "wb") as f:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
        if md5 and h.hexdigest() != md5:
            raise InputError(f"{url}: md5 {h.hexdigest()} does not match the published {md5}; not using it")
        out = Path(tmp) / "x"
        with zipfile.ZipFile(zpath) as z:
            for m in z.namelist():  # refuse paths that escape the folder
                if m.startswith("/") or ".." in Path(m).parts:
                    raise InputError(f"{url}: unsafe path {m!r} in archive")
            z.extractall(out)
        tops = [p for p in out.iterdir() if not p.name.startswith("__MACOSX")]
        src = tops[0] if len(tops) == 1 and tops[0].is_dir() else out
        shutil.move(str(src), str(target))
    return target
