"""Print the Markdown tables of eval/pairwise.md from the JSON results.

    python eval/pairwise_report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RES = Path(__file__).parent / "results"


def dl19() -> None:
    rows = [r for path in sorted(RES.glob("pairwise_dl19*.json")) for r in json.loads(path.read_text())]
    if not rows:
        return
    by = {(r["variant"], r["order"]): r for r in rows}
    names = list(dict.fromkeys(r["variant"] for r in rows))
    print("| variant | nDCG@10 BM25 order | nDCG@10 inverted | prompts/query | comparisons/query "
          "| ties/query | unparsed (total) | rounds/query |")
    print("|---|---|---|---|---|---|---|---|")

    def f(r, k):
        return "" if k not in r else (f"{r[k]:.4f}" if k == "ndcg@10" else str(r[k]))

    def both(a, b, k):
        x, y = f(a, k), f(b, k)
        return x if x == y or not y else f"{x} / {y}"

    for n in names:
        a, b = by.get((n, "bm25"), {}), by.get((n, "inverted"), {})
        print(f"| {n} | {f(a, 'ndcg@10')} | {f(b, 'ndcg@10')} | {both(a, b, 'model_calls_per_query')} "
              f"| {both(a, b, 'comparisons_per_query')} | {both(a, b, 'ties_per_query')} | {both(a, b, 'unparsed_total')} "
              f"| {both(a, b, 'rounds_per_query')} |")
    print()


def bench(name: str = "pairwise_bench.json") -> None:
    path = RES / name
    if not path.exists():
        return
    rows = json.loads(path.read_text())
    print("| method | configuration | max_padding | mode | wall s/query | CPU s/query | prompts | comparisons "
          "| backend calls | prompts/call | prompt tokens | nDCG@10 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['config']} | {r.get('max_padding', '')} | {r['mode']} | {r['wall_s_per_query']} "
              f"| {r['cpu_s_per_query']} "
              f"| {r['prompts']} | {r['comparisons']} | {r['backend_calls']} | {r['prompts_per_backend_call']} "
              f"| {r['prompt_tokens']} | {r['ndcg@10']:.4f} |")
    print()


def counts() -> None:
    path = RES / "pairwise_counts.json"
    if not path.exists():
        return
    print("| judge | variant | prompts/query | comparisons/query | rounds/query | ties/query |")
    print("|---|---|---|---|---|---|")
    for r in json.loads(path.read_text()):
        print(f"| {r['judge']} | {r['variant']} | {r['model_calls_per_query']} | {r['comparisons_per_query'] or ''} "
              f"| {r['rounds_per_query']} | {r['ties_per_query'] or ''} |")
    print()


if __name__ == "__main__":
    dl19()
    bench()
    bench("pairwise_bench_padding.json")
    counts()
