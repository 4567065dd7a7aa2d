"""Comparisons / prompts / rounds per query for N=100 candidates, k=10 (no model: oracle backends).

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data python eval/pairwise_counts.py \
        --out eval/results/pairwise_counts.json

For each DL19 query, the BM25 top-100 in BM25 order is reranked by an oracle that answers from the
NIST grades (unjudged = 0; equal grades are ties), by the same oracle with equal grades broken by the
BM25 rank (a consistent judge that never ties), and by a noisy oracle (grade + N(0, 1) per prompt, so
answers can disagree between the two orders of a pair). Heapsort runs with each tie rule
(``ties=incumbent``, the reference's, and ``input_order``). Counts depend on the judge's
answers, so a real model gives other (but similar in size) numbers; these show what the
algorithms cost. ``allpair`` is run on one query only (it is always n(n-1) prompts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pairwise_common import load_dl19

from rerankkit.backends.fake import OracleBackend
from rerankkit.prompts.template import load_template
from rerankkit.strategies import STRATEGIES

VARIANTS = [
    ("PRP heapsort", "pairwise", "prp", {"method": "heapsort"}),
    ("PRP heapsort, ties=input_order", "pairwise", "prp", {"method": "heapsort", "ties": "input_order"}),
    ("PRP sliding-10", "pairwise", "prp", {"method": "sliding"}),
    ("setwise heapsort c=3", "setwise", "setwise", {"method": "heapsort", "num_child": 2}),
    ("setwise heapsort c=3, ties=input_order", "setwise", "setwise",
     {"method": "heapsort", "num_child": 2, "ties": "input_order"}),
    ("setwise bubblesort c=3", "setwise", "setwise", {"method": "bubblesort", "num_child": 2}),
    ("PRP allpair", "pairwise", "prp", {"method": "allpair"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default="eval/results/pairwise_counts.json")
    args = ap.parse_args()
    run, qrels = load_dl19(args.depth)
    rows = []
    judges = (("oracle (NIST grades)", 0.0, False), ("oracle, never ties (grade, then BM25 rank)", 0.0, True),
              ("noisy oracle (grade + N(0,1))", 1.0, False))
    for judge, noise, strict in judges:
        for name, strategy, template, params in VARIANTS:
            rankings = list(run.values())[:1] if "allpair" in name else list(run.values())
            totals = {"model_calls": 0, "comparisons": 0, "rounds": 0, "ties": 0}
            for r in rankings:
                docs = [sd.doc for sd in r.docs]
                grades = qrels.get(r.query.qid, {})
                # never ties: equal grades ordered by the BM25 rank (a consistent total order)
                rel = {d.prompt_text(): float(grades.get(d.docid, 0)) + (0.5 * (1 - i / len(docs)) if strict else 0.0)
                       for i, d in enumerate(docs)}
                backend = OracleBackend(rel, noise=noise, seed=7)
                strat = STRATEGIES.get(strategy)(load_template(template), {"k": args.k, "max_doc_tokens": None,
                                                                           **params})
                out = strat.rerank_many(backend, [(r.query, docs)])[0]
                for key in totals:
                    totals[key] += int(out.metadata.get(key, 0))
            n = len(rankings)
            row = {"judge": judge, "variant": name, "queries": n, "depth": args.depth, "k": args.k,
                   **{f"{k}_per_query": round(v / n, 1) for k, v in totals.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
