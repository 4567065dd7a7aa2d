"""One Markdown table from several `rerankkit robustness` outputs (their robustness.json files).

    python eval/robustness_summary.py eval/results/robustness/*/robustness.json

Per study: the measure per format (min, max, spread, std over formats), best vs worst (Δ, paired t-test and
bootstrap p), Kendall tau across input orders (mean, min), and the position bias at the first position
(share of shuffled inputs whose top document was shown first, against an order-blind judge).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(x: object, d: int = 4) -> str:
    return "-" if x is None else f"{float(x):.{d}f}"  # type: ignore[arg-type]


def row(path: Path) -> list[str]:
    s = json.loads(path.read_text(encoding="utf-8"))
    setup, f = s["setup"], s["formats"]
    sp = f.get("spread") or {}
    bw = f.get("best_vs_worst") or {}
    orders = s["orders"][0] if s["orders"] else {}
    pb = s.get("position_bias") or {}
    return [setup.get("preset") or setup["strategy"], str(len(f["formats"])), str(setup["settings"]["orders"]),
            _f(sp.get("min")), _f(sp.get("max")), _f(sp.get("spread")), _f(sp.get("std")),
            f"{bw['diff']:+.4f} (p_t {bw['p_t']:.3g}, p_boot {bw['p_boot']:.3g})" if bw else "-",
            _f(orders.get("tau_mean"), 3), _f(orders.get("tau_min"), 3), _f(orders.get("top10_overlap"), 3),
            f"{pb['top1'][0]:.3f} vs {pb['uniform'][0]:.3f}" if pb else "-",
            _f(pb.get("input_tau"), 3) if pb else "-",
            f"{s['cost']['model_calls']} / {s['cost']['wall_s']:.0f} s"]


def main(paths: list[str]) -> None:
    head = ["preset", "formats", "shuffles", "nDCG@10 min", "max", "spread", "std", "best − worst",
            "tau mean", "tau min", "top-10 overlap", "top-1 from position 1 (vs order-blind)", "tau(shown, output)",
            "model calls / wall"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for p in paths:
        print("| " + " | ".join(row(Path(p))) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
