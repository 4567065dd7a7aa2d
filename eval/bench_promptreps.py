"""PromptReps retrieval on a BEIR corpus: dense, sparse and hybrid nDCG@10 and encoding speed.

Encodes every corpus document and every test query with the PromptReps prompt (hf backend, REPRESENT),
builds the dense (faiss) and sparse (impact) indexes, retrieves the top 1000 per query in each mode and
scores them with rerankkit.eval. Documents are "title text" cut to 512 tokens, as the official code does.

    nice -n 10 python eval/bench_promptreps.py --dataset beir/scifact --model packaged:smollm2-135m-instruct \
        --dtype bf16 --out eval/results/promptreps_smollm2_scifact.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

from rerankkit.backends import create_backend
from rerankkit.data import load_dataset
from rerankkit.eval import evaluate
from rerankkit.reps import PromptRepsEncoder, PromptRepsIndex, Reps
from rerankkit.types import Ranking, Run, ScoredDoc


def encode_in_blocks(enc: PromptRepsEncoder, texts: list[str], block: int, folder: Path | None,
                     progress) -> Reps:
    """Encode ``texts`` block by block, keeping finished blocks in ``folder/blocks`` (resumable)."""
    import numpy as np
    import scipy.sparse as sp

    parts_dir = folder / "blocks" if folder is not None else None
    if parts_dir is not None:
        parts_dir.mkdir(parents=True, exist_ok=True)
    dense, sparse, seconds, fallbacks = [], [], 0.0, 0
    vocab = 0
    for b, start in enumerate(range(0, len(texts), block)):
        chunk = texts[start : start + block]
        stem = parts_dir / f"{b:05d}" if parts_dir is not None else None
        if stem is not None and stem.with_suffix(".json").exists():
            meta = json.loads(stem.with_suffix(".json").read_text())
            d, s = np.load(stem.with_suffix(".npy")), sp.load_npz(stem.with_suffix(".npz"))
            progress(len(chunk))
        else:
            r = enc.encode(chunk, "passage", progress)
            d, s, meta = r.dense, r.sparse, {"seconds": r.seconds, "fallbacks": r.fallbacks, "n": len(chunk)}
            if stem is not None:
                np.save(stem.with_suffix(".npy"), d)
                sp.save_npz(stem.with_suffix(".npz"), s)
                stem.with_suffix(".json").write_text(json.dumps(meta))
        dense.append(d)
        sparse.append(s)
        vocab = max(vocab, s.shape[1])
        seconds += meta["seconds"]
        fallbacks += meta["fallbacks"]
    sparse = [s if s.shape[1] == vocab else sp.csr_matrix((s.data, s.indices, s.indptr), shape=(s.shape[0], vocab))
              for s in sparse]
    return Reps(np.concatenate(dense), sp.vstack(sparse).tocsr(), seconds, fallbacks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="beir/scifact")
    ap.add_argument("--model", default="packaged:smollm2-135m-instruct")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-docs", type=int, default=None, help="encode only the first N documents (trial runs)")
    ap.add_argument("--sparse", default="text", choices=["text", "top"])
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--index-dir", default=None,
                    help="keep the encoded index here; blocks of encoded documents are kept as they finish, so an "
                         "interrupted run resumes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is faster on a crowded machine)")
    ap.add_argument("--block", type=int, default=512, help="documents per checkpointed block")
    ap.add_argument("--out", default="eval/results/promptreps_smollm2_scifact.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")

    ds = load_dataset(args.dataset)
    docs = list(ds.corpus())[: args.max_docs]
    queries = ds.queries()
    backend = create_backend("hf", args.model, dtype=args.dtype, batch_size=args.batch_size, threads=args.threads)
    enc = PromptRepsEncoder(backend, max_text_tokens=512, sparse=args.sparse, chunk_size=128)
    texts = [f"{d.title} {d.text}".strip() for d in docs]
    out = {"dataset": args.dataset, "model": args.model, "dtype": args.dtype, "docs": len(docs),
           "queries": len(queries), "sparse_terms": args.sparse, "alpha": args.alpha,
           "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
           "torch": torch.__version__}

    folder = Path(args.index_dir) if args.index_dir else None
    if folder is not None and (folder / "reps.json").exists():
        index = PromptRepsIndex.load(folder)
        out["docs_encoded_s"] = json.loads((folder / "timing.json").read_text())["docs_encoded_s"]
    else:
        done = {"n": 0, "t": time.perf_counter()}

        def progress(n: int) -> None:
            done["n"] += n
            rate = done["n"] / (time.perf_counter() - done["t"])
            logging.info("encoded %d/%d documents (%.2f docs/s)", done["n"], len(texts), rate)

        reps = encode_in_blocks(enc, texts, args.block, folder, progress)
        out["docs_encoded_s"] = round(reps.seconds, 1)
        out["sparse_fallback_docs"] = reps.fallbacks
        index = PromptRepsIndex.from_reps(reps)
        if folder is not None:
            index.save(folder)
            (folder / "timing.json").write_text(json.dumps({"docs_encoded_s": out["docs_encoded_s"]}))
    out["docs_per_s"] = round(len(docs) / out["docs_encoded_s"], 2)
    out["sparse_terms_per_doc"] = round(index.sparse.nnz / max(1, len(index)), 1)

    qreps = enc.encode([q.text for q in queries], "query")
    out["queries_encoded_s"] = round(qreps.seconds, 1)
    out["nDCG@10"], out["R@100"] = {}, {}
    for mode in ("dense", "sparse", "hybrid"):
        hits = index.search(qreps, 1000, mode, alpha=args.alpha)
        run = Run(Ranking(q, tuple(ScoredDoc(docs[i], s) for i, s in h)) for q, h in zip(queries, hits))
        res = evaluate(run, ds, ["nDCG@10", "R@100"], missing_as_zero=True)
        out["nDCG@10"][mode] = round(res["nDCG@10"], 4)
        out["R@100"][mode] = round(res["R@100"], 4)
        logging.info("%s nDCG@10 %.4f R@100 %.4f", mode, res["nDCG@10"], res["R@100"])
    print(json.dumps(out, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
