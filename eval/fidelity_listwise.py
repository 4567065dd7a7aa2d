"""rerankkit's listwise rerankers side by side with castorini/rank_llm 0.25.7 on DL19 BM25 candidates.

    PYTHONPATH=. python eval/fidelity_listwise.py --queries 10 --depth 20 --out eval/results/fidelity_listwise.json

Model: SmolLM2-135M-Instruct from the packaged GGUF, fp32, on both sides. rank_llm runs its own code
(``RankListwiseOSLLM``: prompts, budget loop, sliding windows, parsing, FIRST's log-prob reading) with
vLLM replaced by a transformers engine (``tests/reference/rank_llm_ref.py``); rank-llm must be installed
(``pip install --no-deps rank-llm==0.25.7 dacite``, as ``scripts/setup`` does). For each template:

- ``rank-zephyr``, ``rank-gpt`` (generation): rerankkit reranks every query (lock-step, its own greedy
  generation). Then rank_llm reranks the same queries (a) fed rerankkit's model text for each prompt it
  builds (a prompt rerankkit never sent counts as a prompt mismatch): prompts identical, final orders
  identical; (b) every model answer (rerankkit's and rank_llm's own) parsed by both parsers; (c) with its
  own generation (vLLM's ``min_tokens = max_tokens`` = its answer estimate, stop tokens blocked until
  then), where rerankkit stops at the end-of-sequence token: the answers and orders that differ.
- ``first-rankllm`` (FIRST): rank_llm generates "[" (forced here; how often SmolLM2 would write it is
  reported) and reads the top-30 log-probs of the next token; rerankkit pre-fills "[" and scores the
  identifier letters with the top-30 rule; also the orders with every letter sorted (``top_logprobs=none``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "reference")]

import ir_measures  # noqa: E402
import rank_llm_ref as ref  # noqa: E402
from ir_measures import nDCG  # noqa: E402

from rerankkit import Query, Reranker, Run  # noqa: E402
from rerankkit.backends.base import Capability  # noqa: E402
from rerankkit.data import load_dataset  # noqa: E402
from rerankkit.strategies.permutation import identifiers, parse_permutation  # noqa: E402

_NUM = re.compile(r"provide you with (\d+) passages")


class Recorder:
    """The hf backend, recording each rendered prompt with its generated text (or scores)."""

    def __init__(self, inner):
        self.inner = inner
        self.texts: dict[str, str] = {}
        self.scored: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def capabilities(self) -> Capability:
        return self.inner.capabilities

    def generate(self, prompts, max_new_tokens, sampling=None):
        outs = self.inner.generate(prompts, max_new_tokens, sampling)
        for p, g in zip(prompts, outs):
            self.texts[self.inner.render(p)] = g.text
        return outs

    def score(self, requests):
        self.scored.extend(self.inner.render(r.prompt) for r in requests)
        return self.inner.score(requests)


def ndcg10(orders: dict[str, list[str]], qrels: list) -> float:
    run = [ir_measures.ScoredDoc(q, d, float(len(ids) - i)) for q, ids in orders.items() for i, d in enumerate(ids)]
    return round(float(ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]), 4)


def parse_parity(rl, texts: dict[str, str], style: str) -> dict:
    """Both parsers on every (prompt, model text): how many windows give the same order."""
    same, diff = 0, []
    for prompt, text in texts.items():
        n = int(_NUM.search(prompt).group(1))
        mine = list(parse_permutation(text, identifiers(n, style)).order)
        theirs = ref.order_after(rl, text, n)
        if mine == theirs:
            same += 1
        else:
            diff.append({"text": text[:200], "rerankkit": mine, "rank_llm": theirs})
    return {"windows": len(texts), "identical": same, "differences": diff[:5]}


def rank_llm_orders(rl_reranker, items, n_of) -> dict[str, list[str]]:
    out = {}
    for q, docs in items:
        res = rl_reranker.rerank_batch([ref.request(q.text, docs, q.qid)], rank_start=0, rank_end=n_of(docs),
                                       top_k_retrieve=n_of(docs))[0]
        out[q.qid] = [c.docid for c in res.candidates]
    return out


def generation(template, args, backend, model, tok, items, qrels) -> dict:
    rec = Recorder(backend)
    rr = Reranker("listwise-smollm2-135m", backend_instance=rec, template=template, window=args.window,
                  stride=args.stride)
    t0 = time.perf_counter()
    rankings = rr.rerank_many(items)
    ours = {r.query.qid: r.docids for r in rankings}
    ours_s = time.perf_counter() - t0
    n_of = len
    # (a) rank_llm fed rerankkit's text for each prompt it builds
    missing: list[str] = []

    def answer(prompt: str) -> str:
        if prompt not in rec.texts:
            missing.append(prompt)
            return ""
        return rec.texts[prompt]

    fed = ref.ScriptedEngine(tok, answer)
    rl = ref.reranker(fed, template, window=args.window, stride=args.stride)
    fed_orders = rank_llm_orders(rl, items, n_of)
    # (c) rank_llm with its own generation
    engine = ref.TransformersEngine(model, tok)
    rl_native = ref.reranker(engine, template, window=args.window, stride=args.stride)
    t0 = time.perf_counter()
    native = rank_llm_orders(rl_native, items, n_of)
    native_s = time.perf_counter() - t0
    native_texts = dict(zip(engine.prompts, engine.texts))
    shared = [p for p in native_texts if p in rec.texts]
    return {
        "rerankkit_ndcg10": ndcg10(ours, qrels),
        "rank_llm_native_ndcg10": ndcg10(native, qrels),
        "rerankkit_wall_s": round(ours_s, 1), "rank_llm_native_wall_s": round(native_s, 1),
        "windows": len(fed.prompts),
        "prompts_identical": len(fed.prompts) - len(missing),
        "final_orders_identical_same_text": sum(fed_orders[q] == ours[q] for q in ours),
        "queries": len(ours),
        "parse_parity_rerankkit_texts": parse_parity(rl, rec.texts, "numeric"),
        "parse_parity_rank_llm_texts": parse_parity(rl, native_texts, "numeric"),
        "native_generation": {
            "prompts_also_sent_by_rerankkit": len(shared),
            "identical_answer_text": sum(native_texts[p] == rec.texts[p] for p in shared),
            "final_orders_identical": sum(native[q] == ours[q] for q in ours),
            "answer_samples": [{"rerankkit": rec.texts[p][:160], "rank_llm": native_texts[p][:160]}
                               for p in shared[:3]],
        },
        "rerankkit_repairs": {k: sum(r.metadata.get(k, 0) for r in rankings)
                              for k in ("parse_unknown_ids", "parse_duplicate_ids", "parse_missing_ids",
                                        "parse_repaired_windows", "parse_failed_windows",
                                        "parse_unreadable_windows", "truncated_docs")},
    }


def first(args, backend, model, tok, items, qrels) -> dict:
    rec = Recorder(backend)
    rr = Reranker("first-smollm2-135m", backend_instance=rec, template="first-rankllm", window=args.window,
                  stride=args.stride)
    rankings = rr.rerank_many(items)
    ours = {r.query.qid: r.docids for r in rankings}
    rall = Reranker("first-smollm2-135m", backend_instance=backend, template="first-rankllm", window=args.window,
                    stride=args.stride, top_logprobs=None)
    all_sorted = {r.query.qid: r.docids for r in rall.rerank_many(items)}
    engine = ref.TransformersEngine(model, tok, first_token="[")
    rl = ref.reranker(engine, "first-rankllm", window=args.window, stride=args.stride, use_logits=True)
    theirs = rank_llm_orders(rl, items, len)
    ours_prompts = {p[:-1] for p in rec.scored if p.endswith("[")}
    return {
        "rerankkit_ndcg10": ndcg10(ours, qrels),
        "rank_llm_ndcg10": ndcg10(theirs, qrels),
        "all_letters_sorted_ndcg10": ndcg10(all_sorted, qrels),
        "windows": len(engine.prompts),
        "prompts_identical": sum(p in ours_prompts for p in engine.prompts),
        "final_orders_identical": sum(theirs[q] == ours[q] for q in ours),
        "queries": len(ours),
        "orders_identical_when_all_letters_sorted": sum(theirs[q] == all_sorted[q] for q in ours),
        "letters_outside_top30": sum(r.metadata.get("first_outside_top_k", 0) for r in rankings),
        "windows_with_letters_outside_top30": sum(r.metadata.get("first_windows_outside_top_k", 0)
                                                  for r in rankings),
        "smollm2_writes_open_bracket_first": sum(t == "[" for t in engine.first_greedy),
        "smollm2_first_tokens": sorted(set(engine.first_greedy))[:10],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("RERANKKIT_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--templates", default="rank-zephyr,rank-gpt,first-rankllm")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    os.environ["RERANKKIT_DATA"] = args.data
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankkit.backends.hf import HFBackend
    from rerankkit.models import materialize_gguf, packaged_path

    ds = load_dataset("trec-dl-2019/passage")
    run = ds.candidates("bm25").top(args.depth)
    run = Run([run[q] for q in list(run)[: args.queries]])
    items = [(Query(r.query.qid, r.query.text), [sd.doc for sd in r.docs]) for r in (run[q] for q in run)]
    qids = set(run)
    qrels = [ir_measures.Qrel(q.qid, q.docid, q.relevance) for q in ds.qrels() if q.qid in qids]
    p = packaged_path("smollm2-135m-instruct")
    folder = str(materialize_gguf(str(p.parent), p.name))
    backend = HFBackend(folder, dtype="fp32", batch_size=16)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    bm25 = {q.qid: [d.docid for d in docs] for q, docs in items}
    result = {"reference": f"rank-llm {ref.RANK_LLM_VERSION}", "model": "SmolLM2-135M-Instruct (packaged GGUF), fp32",
              "queries": len(items), "depth": args.depth, "window": args.window, "stride": args.stride,
              "bm25_ndcg10": ndcg10(bm25, qrels), "machine": f"{platform.machine()} {os.cpu_count()} cpus",
              "torch_threads": torch.get_num_threads(), "templates": {}}
    t_all = time.perf_counter()
    for template in [t for t in args.templates.split(",") if t]:
        t0 = time.perf_counter()
        if template == "first-rankllm":
            row = first(args, backend, model, tok, items, qrels)
        else:
            row = generation(template, args, backend, model, tok, items, qrels)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        result["templates"][template] = row
        print(template, json.dumps({k: v for k, v in row.items() if not isinstance(v, (dict, list))}), flush=True)
    result["wall_s"] = round(time.perf_counter() - t_all, 1)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
