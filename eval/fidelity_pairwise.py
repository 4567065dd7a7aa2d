"""rerankkit's PRP and setwise side by side with ielab/llm-rankers: per-case agreement and call counts.

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 \
        python eval/fidelity_pairwise.py --queries 10 --depth 20 --out eval/results/fidelity_pairwise.json

The full comparison of ``tests/reference/test_llmrankers_models.py`` (which runs 3 queries x 10 documents
in CI) on the first ``--queries`` DL19 queries x BM25 top-``--depth``, fp32, for SmolLM2-135M-Instruct
(causal), a tiny random T5 (seq2seq, SentencePiece tokenizer trained on DL19 text) and a tiny random Llama
(causal, label tokens calibrated to be common answers): every case in generation mode, setwise also in
likelihood mode, and rerankkit's scoring mode checked prompt by prompt against the reference's greedy
answers. Per case, mode and query the JSON holds: rerankkit's ranking and the reference's, model calls,
the reference's distinct / raw / degenerate (fewer than two passages) prompts, and per-prompt agreement
(same token ids, same decision). The summary printed at the end is what eval/fidelity.md quotes.

``--only`` picks cases, ``--modes generate`` skips rerankkit's scoring mode (half of rerankkit's side), and
``--reference-cache DIR`` keeps llm-rankers' results so a rerun after an interruption skips the reference,
and ``--answer-cache DIR`` puts rerankkit's backend behind the answer cache: each prompt is computed once (the
prompt-by-prompt check reads the run's answer; model calls are counted by the strategy, as without it), and
a rerun resumes. PRP allpair with SmolLM2 (3,800 prompts a mode) is the slow case:

    python eval/fidelity_pairwise.py --models smollm2 --threads 2 --only prp-allpair --modes generate \
        --reference-cache runs/fidelity_reference --answer-cache runs/fidelity_answers \
        --out eval/results/fidelity_pairwise_smollm2_allpair.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reference"))

import llmrankers_parity as P  # noqa: E402


def summarise(report: dict) -> dict:
    out = {}
    for mode, result in report["modes"].items():
        qs = result["queries"]
        asked = [q for q in qs if q["labelled_same_decision"] is not None]
        out[mode] = {
            "full_run_compared": result["full_run_compared"],
            "queries": len(qs),
            "same_ranking": sum(q["same_ranking"] for q in qs),
            "same_top10": sum(q["same_top10"] for q in qs),
            "calls_equal": sum(q["model_calls"] == q["ref_distinct_prompts"] for q in qs),
            "model_calls": sum(q["model_calls"] for q in qs),
            "ref_distinct_prompts": sum(q["ref_distinct_prompts"] for q in qs),
            "ref_raw_prompts": sum(q["ref_raw_prompts"] for q in qs),
            "ref_degenerate_prompts": sum(q["ref_degenerate_prompts"] for q in qs),
            "same_input_ids": sum(q["prompts_same_input_ids"] for q in qs),
            "ref_labelled": sum(q["prompts_labelled_by_ref"] for q in qs),
            "labelled_same_decision": sum(q["labelled_same_decision"] for q in asked) if asked else None,
            "prompts_same_decision": sum(q["prompts_same_decision"] for q in asked) if asked else None,
            "all_labelled_queries": sum(q["prompts_labelled_by_ref"] == q["ref_distinct_prompts"] for q in qs),
            "all_labelled_same_ranking": sum(q["same_ranking"] for q in qs
                                             if q["prompts_labelled_by_ref"] == q["ref_distinct_prompts"]),
            "unparsed": sum(q["unparsed"] for q in qs),
        }
    return out


def reference(folder: Path, model: str, cases: list, items: list, args: argparse.Namespace) -> dict:
    """llm-rankers' results for ``cases``, from ``--reference-cache`` when an earlier run of the same model,
    cases, queries and depth stored them (the tiny models are rebuilt from fixed seeds, so they are the same)."""
    if not args.reference_cache:
        return P.run_reference(folder, cases, items, threads=args.threads)
    key = f"{model}-q{args.queries}-d{args.depth}-" + "_".join(sorted(c.name for c in cases))
    path = Path(args.reference_cache) / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    ref = P.run_reference(folder, cases, items, threads=args.threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ref))
    return ref


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--models", default="smollm2,t5,llama", help="comma-separated: smollm2, t5, llama")
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="eval/results/fidelity_pairwise.json")
    ap.add_argument("--modes", default="generate,score",
                    help="rerankkit modes to compare (generate: the reference's own mode for causal models)")
    ap.add_argument("--reference-cache", default=None,
                    help="a folder keeping llm-rankers' results per model and case set, so a rerun skips them")
    ap.add_argument("--answer-cache", default=None,
                    help="a folder for rerankkit's answer caches (one per model): the prompt-by-prompt check reads "
                         "the run's answers instead of asking each prompt again, and a rerun resumes")
    args = ap.parse_args()
    wanted = tuple(args.modes.split(","))
    if unknown := sorted(set(wanted) - {"generate", "score"}):
        ap.error(f"--modes: unknown mode(s) {unknown}; choose from generate, score")
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from rerankkit.backends import create_backend
    from rerankkit.models import materialize_gguf, packaged_path

    items = P.dl19_items(args.queries, args.depth)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {"queries": args.queries, "depth": args.depth, "dtype": "fp32", "threads": args.threads,
                    "answer_cache": bool(args.answer_cache),
                    "query_tokens": P.QUERY_TOKENS, "passage_tokens": P.PASSAGE_TOKENS, "models": {}}
    smol = packaged_path("smollm2-135m-instruct")
    smol_dir = materialize_gguf(str(smol.parent), smol.name)
    with tempfile.TemporaryDirectory() as tmp:
        for model in [m for m in args.models.split(",") if m]:
            if model == "smollm2":
                folder, seq2seq, cases = smol_dir, False, P.cases(num_child=(2, 3))
            elif model == "t5":
                folder, seq2seq = P.build_tiny_t5(Path(tmp) / "t5"), True
                cases = P.cases(num_child=(2, 3), likelihood=True)
            elif model == "llama":
                folder, seq2seq, cases = P.build_tiny_llama(Path(tmp) / "llama", smol_dir), False, P.cases(num_child=(2, 3))
            else:
                raise SystemExit(f"unknown model {model!r}")
            if args.only:
                cases = [c for c in cases if c.name in args.only.split(",")]
            t0 = time.perf_counter()
            ref = reference(folder, model, cases, items, args)
            ref_s = time.perf_counter() - t0
            backend = create_backend("hf", str(folder), dtype="fp32", device="cpu", threads=args.threads)
            asker = backend
            if args.answer_cache:
                from rerankkit.backends.cached import CachedBackend

                cache_path = Path(args.answer_cache) / f"{model}-q{args.queries}-d{args.depth}.sqlite"
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                asker = CachedBackend(backend, cache_path)
            entry: dict = {"reference_wall_s": round(ref_s, 1), "cases": {}}
            if seq2seq:
                entry["t5_decoder_ids_equal"] = backend.decoder_ids("Passage") == ref["t5_decoder_input_ids"]
            for case in cases:
                t0 = time.perf_counter()
                modes = ("score",) if case.scoring == "likelihood" else wanted
                report = P.compare_case(case, ref["cases"][case.name], items, backend, seq2seq, modes, asker=asker)
                report["summary"] = summarise(report)
                report["wall_s"] = round(time.perf_counter() - t0, 1)
                entry["cases"][case.name] = report
                for mode, s in report["summary"].items():
                    print(f"{model:8} {case.name:32} {mode:8} same ranking {s['same_ranking']}/{s['queries']}"
                          f" top-10 {s['same_top10']}/{s['queries']} calls {s['model_calls']}"
                          f" ref distinct {s['ref_distinct_prompts']} raw {s['ref_raw_prompts']}"
                          f" labelled-agree {s['labelled_same_decision']}/{s['ref_labelled']}", flush=True)
                result["models"][model] = entry
                out_path.write_text(json.dumps(result, indent=1))
    out_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
