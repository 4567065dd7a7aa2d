"""Do rankings through a llama.cpp server (openai backend) agree with the hf backend on the same model?

SmolLM2-135M-Instruct from the packaged Q4_1 GGUF: llama.cpp runs the quantised weights with its own
kernels; the hf backend runs them dequantised to fp32 in transformers. Same prompts, same tokens (the
openai backend renders with the model's chat template here and sends token ids). Per query: Kendall tau
between the two rankings of the same candidates, and nDCG@10 of each.

    python eval/serving_parity.py --queries 10 --pointwise-depth 10 --prp-queries 5 --prp-depth 6 \
        --out eval/results/serving_parity.json

``--server-gguf FILE`` serves another GGUF of the same model instead, e.g. an F32 file of exactly the
dequantised weights the hf backend runs (made with llama.cpp's ``convert_hf_to_gguf.py --outtype f32``
from the folder ``rerankkit.models`` materialises), which separates backend errors from quantisation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from llama_server import llama_server  # noqa: E402

from rerankkit import Reranker, evaluate  # noqa: E402
from rerankkit.data import load_dataset  # noqa: E402
from rerankkit.models import packaged_path  # noqa: E402


def kendall_tau(a: list[str], b: list[str]) -> float:
    pos = {x: i for i, x in enumerate(b)}
    n = len(a)
    s = sum(1 if pos[a[i]] < pos[a[j]] else -1 for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2) if n > 1 else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--pointwise-depth", type=int, default=20)
    ap.add_argument("--prp-queries", type=int, default=5)
    ap.add_argument("--prp-depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", default="pointwise,prp-allpair")
    ap.add_argument("--arms", default="hf,openai", help="compared with the first: hf (fp32), hf-bf16, openai")
    ap.add_argument("--out", default="eval/results/serving_parity.json")
    ap.add_argument("--server-gguf", default="", help="GGUF file the server loads (default: the packaged Q4_1)")
    args = ap.parse_args()

    ds = load_dataset("trec-dl-2019/passage")
    qrels = ds.qrels()
    cases = [("pointwise", "pointwise-smollm2-135m", {}, args.queries, args.pointwise_depth),
             ("prp-allpair", "prp-smollm2-135m", {"method": "allpair"}, args.prp_queries, args.prp_depth)]
    cases = [c for c in cases if c[0] in args.cases.split(",")]
    arms = args.arms.split(",")
    gguf = Path(args.server_gguf) if args.server_gguf else packaged_path("smollm2-135m-instruct")
    report: dict = {"queries": args.queries, "model": "SmolLM2-135M-Instruct (packaged Q4_1 GGUF)",
                    "server_gguf": gguf.name, "rows": []}
    with llama_server(gguf, threads=args.threads) as url:
        for label, preset, params, n_queries, depth in cases:
            run = ds.candidates().head(n_queries).top(depth)
            out = {}
            for backend in arms:
                opts = {"hf": {"dtype": "fp32", "threads": args.threads},
                        "hf-bf16": {"dtype": "bf16", "threads": args.threads},
                        "openai": {"backend": "openai", "base_url": url, "max_concurrency": 4}}[backend]
                r = Reranker(preset, **params, **opts)
                t = time.perf_counter()
                out[backend] = r.rerank_run(run)
                wall = time.perf_counter() - t
                ndcg = evaluate(out[backend], qrels, ["nDCG@10"], queries=list(run))  # the mean over these queries
                report["rows"].append({"case": label, "backend": backend, "wall_s": round(wall, 1),
                                       "usage": out[backend].metadata["usage"], "nDCG@10": ndcg.aggregate["nDCG@10"]})
                r.close()
                print(json.dumps(report["rows"][-1]), flush=True)
            ref = out[arms[0]]
            for other in arms[1:]:
                taus = {qid: round(kendall_tau(ref[qid].docids, out[other][qid].docids), 4) for qid in ref}
                row = {"case": label, "compared": f"{other} vs {arms[0]}", "queries": n_queries, "depth": depth,
                       "kendall_tau_per_query": taus, "mean_kendall_tau": round(sum(taus.values()) / len(taus), 4),
                       "min_kendall_tau": min(taus.values())}
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
