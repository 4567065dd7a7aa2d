"""Few-shot pairs for `rerankkit adapt` (generation.fewshot_file) from a *training* split, never the test split.

    python eval/adapt/fewshot.py --dataset beir/nfcorpus --split dev -o runs/adapt/fewshot-nfcorpus.jsonl
    python eval/adapt/fewshot.py --scifact-train -o runs/adapt/fewshot-scifact.jsonl

NFCorpus: queries of the named split (dev) with their best-graded judged document. SciFact: the BEIR copy here
has only the test split; the original release's training claims (`claims_train.csv` in
$RERANKKIT_DATA/beir-scifact/scifact_hf_csv.zip; BEIR's test claims are `claims_validation.csv`) with the
abstract each claim's evidence is in. Pairs whose query text equals a test query (two SciFact train claims
do) are skipped. `--n` pairs are drawn with `--seed`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import zipfile
from pathlib import Path

from rerankkit import load_dataset
from rerankkit.adapt.collection import normalize_query


def scifact_train(n: int, seed: int) -> list[dict]:
    root = Path(os.environ.get("RERANKKIT_DATA", "../shared/data")) / "beir-scifact" / "scifact_hf_csv.zip"
    with zipfile.ZipFile(root) as z:
        claims = list(csv.DictReader(io.TextIOWrapper(z.open("claims_train.csv"), encoding="utf-8")))
    corpus = {d.docid: d for d in load_dataset("beir/scifact").corpus()}
    test = {normalize_query(q.text) for q in load_dataset("beir/scifact", split="test").queries()}
    pool = [c for c in claims if c["evidence_doc_id"] and c["evidence_doc_id"] in corpus
            and normalize_query(c["claim"]) not in test]
    picked = random.Random(seed).sample(pool, n)
    return [{"document": corpus[c["evidence_doc_id"]].prompt_text(), "query": c["claim"].strip(),
             "source": f"SciFact claims_train.csv id {c['id']}, evidence doc {c['evidence_doc_id']}"} for c in picked]


def from_split(dataset: str, split: str, n: int, seed: int) -> list[dict]:
    if split == "test":
        raise SystemExit("few-shot pairs must not come from the test split")
    ds = load_dataset(dataset, split=split)
    corpus = {d.docid: d for d in ds.corpus()}
    test = {normalize_query(q.text) for q in load_dataset(dataset, split="test").queries()}
    best: dict[str, tuple[int, str]] = {}
    for r in ds.qrels():
        if r.relevance > 0 and r.docid in corpus and r.relevance > best.get(r.qid, (0, ""))[0]:
            best[r.qid] = (r.relevance, r.docid)
    pool = [q for q in ds.queries() if q.qid in best and normalize_query(q.text) not in test]
    picked = random.Random(seed).sample(pool, n)
    return [{"document": corpus[best[q.qid][1]].prompt_text(), "query": q.text,
             "source": f"{dataset} {split} query {q.qid}, judged document {best[q.qid][1]}"} for q in picked]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset")
    src.add_argument("--scifact-train", action="store_true")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    rows = scifact_train(a.n, a.seed) if a.scifact_train else from_split(a.dataset, a.split, a.n, a.seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for r in rows:
        print(f"{r['query']}  <-  {r['source']}")


if __name__ == "__main__":
    main()
