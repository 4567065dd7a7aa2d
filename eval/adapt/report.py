"""Markdown for eval/adapt.md from an adapt run: what it trained on, generated-query samples, times, held-out.

    python eval/adapt/report.py runs/adapt/scifact-duqgen [--samples 8]

Prints the facts from OUTPUT_DIR/adapt.json (collection, sample, queries, overlap counts, stage times,
training summary, held-out nDCG@10 on synthetic queries) and the first generated queries next to the
beginning of the document each was generated from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rerankkit.adapt.collection import load_collection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output_dir")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--chars", type=int, default=160)
    a = ap.parse_args()
    out = Path(a.output_dir)
    rec = json.loads((out / "adapt.json").read_text())
    cfg = rec["config"]
    t = rec.get("train", {})
    print(f"### {rec.get('preset', {}).get('name', out.name)} ({rec['mode']}, objective {rec['objective']}, "
          f"seed {rec['seed']})\n")
    c = rec["collection"]
    print(f"- collection: {'; '.join(c['sources'])}: {c['documents']:,} documents, {c['sampleable']:,} of at "
          f"least {cfg['corpus']['min_chars']} characters (fingerprint {c['fingerprint']})")
    if "sampling" in rec:
        s = cfg["sampling"]
        print(f"- sampled: {rec['sampling']['documents']} documents from {s['clusters']} k-means clusters "
              f"({rec['sampling']['kmeans']}, embedder {s['embedder']}), T={s['temperature']}, {s['rounds']} "
              f"draws pooled + MMR lambda {s['mmr_lambda']}: `{out / 'sampled.jsonl'}`")
    q = rec["queries"]
    print(f"- queries: {q['usable']} trained on of {q['generated']} generated (dropped: {q['dropped_empty']} "
          f"empty, {q['dropped_fewshot_copy']} copies of a few-shot query, {q['dropped_duplicate']} duplicates): "
          f"`{q['file']}`")
    if "generation" in rec:
        g = rec["generation"]
        print(f"- generator: {g['model']} ({g['backend']}), template {g['template']}, few-shot queries: "
              + "; ".join(f"\"{x['query']}\"" for x in g["fewshot"]))
    if "teacher" in rec:
        tr = rec["teacher"]
        print(f"- teacher: {tr['preset'] or tr['run']} over the first-stage top {tr['depth']}: `{tr['file']}`")
    ov = rec["eval_overlap"]
    print(f"- evaluation overlap: {ov['queries']} queries; of {ov['training_documents']:,} training documents, "
          f"judged for {rec['eval']['split']} queries: "
          + ", ".join(f"{k} {v}" for k, v in ov["judged_for_eval_queries"].items()))
    if t:
        print(f"- training: {t['steps']} steps, {t['examples']} examples over {t['train_queries']} queries, "
              f"loss {t['first_loss']:.4f} -> {t['last_loss']:.4f}, {t['wall_s']} s; adapter `{t['adapter']}`")
        h = t.get("holdout")
        if h:
            print(f"- held-out synthetic queries ({h['queries']}, top {h['depth']}): candidates "
                  f"{h['candidates']:.4f}, before {h['before']:.4f}, after {h.get('after', float('nan')):.4f}")
    times = rec.get("times_s", {})
    print("- stage times (s): " + ", ".join(f"{k} {v}" for k, v in times.items())
          + f"; total {sum(times.values()):.0f}")
    rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()][: a.samples]
    _, docs = load_collection(cfg["corpus"]["datasets"], cfg["corpus"]["candidates"], 0, None)
    by_id = {d.docid: d for d in docs}
    print("\n| document (beginning) | generated query |\n|---|---|")
    for r in rows:
        text = " ".join(by_id[r["docid"]].prompt_text().split())[: a.chars].replace("|", "\\|")
        query = (r["query"] if r.get("use", "ok") == "ok" else f"({r.get('use')}: {r['raw'][:60]!r})")
        query = query.replace("|", "\\|")
        print(f"| {r['docid']}: {text}... | {query} |")


if __name__ == "__main__":
    main()
