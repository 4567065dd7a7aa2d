"""A study's outputs: ``robustness.json`` (everything), ``report.md`` and a self-contained ``report.html``
with the plots (``formats.png``, ``position_bias.png``; matplotlib, the ``bench`` extra)."""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError
from .analysis import summarize
from .study import Study

log = logging.getLogger(__name__)
JSON = "robustness.json"
Block = tuple[str, Any]  # ("h2", text) | ("p", text) | ("table", (head, rows)) | ("code", text) | ("img", (file, alt))


def write_outputs(study: Study, records: Sequence[Mapping[str, Any]], out_dir: str | Path,
                  command: str = "", cost: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Summarise ``records`` and write the JSON, the plots and the Markdown/HTML report into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(study.describe(), records, {o: study.shown(o) for o in study.orders})
    summary["command"] = command
    summary["estimate"] = dict(cost or {})
    summary["written"] = datetime.now(UTC).isoformat(timespec="seconds")
    f = summary["formats"]
    shown = sorted({0, f.get("best", 0), f.get("worst", 0)})
    summary["examples"] = {str(i): study.example(i) for i in shown}
    paths: dict[str, Path] = {"json": out / JSON}
    tmp = out / f".{JSON}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, paths["json"])
    try:
        from .plot import formats_plot, position_plot

        if f.get("spread") is not None and len(f["formats"]) > 1:
            paths["formats_png"] = formats_plot(summary, out / "formats.png")
        if summary.get("position_bias"):
            paths["position_png"] = position_plot(summary, out / "position_bias.png")
    except MissingExtraError as exc:
        log.warning("no plots: %s", exc)
    blocks = report_blocks(summary, {k: p.name for k, p in paths.items() if k.endswith("_png")})
    paths["md"] = out / "report.md"
    paths["md"].write_text(markdown(blocks), encoding="utf-8")
    paths["html"] = out / "report.html"
    paths["html"].write_text(html_page(blocks, out, _title(summary)), encoding="utf-8")
    return paths


def _title(summary: Mapping[str, Any]) -> str:
    s = summary["setup"]
    return f"Robustness: {s.get('preset') or s['strategy']} on {s.get('dataset') or 'the candidates'}"


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{float(x):.{digits}f}"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def report_blocks(summary: Mapping[str, Any], images: Mapping[str, str]) -> list[Block]:
    """The report as blocks, rendered by :func:`markdown` and :func:`html_page`."""
    s = summary["setup"]
    st = s["settings"]
    m = st["measure"]
    f = summary["formats"]
    cost = summary["cost"]
    blocks: list[Block] = [("h1", _title(summary))]
    design = ("every format under every order" if s["design"] == "grid" else
              "formats at the first-stage order, shuffles under the template as written")
    blocks.append(("p", f"Strategy `{s['strategy']}`, template `{s['template']}`, model `{s['spec'].get('model', '')}`; "
                        f"{s['queries']} queries, the first {st['depth'] or 'all'} candidates reranked; "
                        f"{len(s['formats'])} prompt formats (F00 is the template as written, the rest sampled with seed "
                        f"{st['seed']} from the format grammar), {st['orders']} seeded shuffles of the input order "
                        f"besides the first-stage order; {design}; measure {m}."))
    if summary.get("command"):
        blocks.append(("code", summary["command"]))
    est = summary.get("estimate") or {}
    blocks.append(("p", f"Cost: {cost['requests']} requests, {cost['model_calls']} model calls made by this run and "
                        f"{cost['cached_calls']} answered from the cache, {cost['wall_s']} s of reranking"
                        + (f"; estimated beforehand: {est.get('model_calls')} model calls"
                           + ("" if est.get("exact", True) else " (an estimate)") if est else "") + "."))
    blocks.append(("h2", "Prompt formats"))
    if f.get("spread"):
        sp = f["spread"]
        orders = ", ".join(str(o) for o in f["orders"])
        blocks.append(("p", f"{m} over {len(f['formats'])} formats (averaged over input order(s) {orders}, "
                            f"{f['queries']} queries): min {_f(sp['min'])}, max {_f(sp['max'])}, "
                            f"**spread {_f(sp['spread'])}**, std {_f(sp['std'])}, mean {_f(sp['mean'])}."))
    rows = [[f"F{r['index']:02d}", r["key"], _f(r["mean"]), "" if r["index"] == 0 else f"{r['delta']:+.4f}",
             "" if r["index"] == 0 else f"{r['wins']}/{r['ties']}/{r['losses']}"] for r in f["formats"]]
    blocks.append(("table", (["format", "axes changed", m, "Δ vs F00", "W/T/L vs F00 (queries)"], rows)))
    bw = f.get("best_vs_worst")
    if bw:
        b, w = f["best"], f["worst"]
        blocks.append(("p", f"Best F{b:02d} against worst F{w:02d}: Δ {bw['diff']:+.4f} "
                            f"(95 % bootstrap interval {bw['ci_low']:+.4f} to {bw['ci_high']:+.4f}), "
                            f"W/T/L {bw['wins']}/{bw['ties']}/{bw['losses']} over {bw['n']} queries, paired t-test "
                            f"p = {_p(bw['p_t'])}, paired bootstrap p = {_p(bw['p_boot'])} ({bw['resamples']} "
                            "resamples). Best and worst were chosen after seeing the scores, so these p-values "
                            "say whether the spread exceeds query-level noise, not that these two formats were "
                            "a planned comparison."))
    if "formats_png" in images:
        blocks.append(("img", (images["formats_png"], f"{m} per format")))
    examples = summary.get("examples", {})
    roles = (("the template as written", 0), ("the best format", f.get("best")), ("the worst format", f.get("worst")))
    for idx in sorted({i for _, i in roles if i is not None and str(i) in examples}):
        key = f["formats"][idx]["key"]
        names = [name for name, i in roles if i == idx]
        what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        blocks.append(("h3", f"F{idx:02d} ({key}): {what}"))
        blocks.append(("p", "The first prompt of the first query (documents shortened for display; the model's "
                            "chat template is applied on top):"))
        blocks.append(("code", examples[str(idx)]))
    blocks.append(("h2", "Input order"))
    if not summary["orders"]:
        blocks.append(("p", "No format was run under more than one input order (use --orders M)."))
    for o in summary["orders"]:
        per = ", ".join(f"order {x['order']}: {_f(x['mean'])}" for x in o["per_order"])
        blocks.append(("p", f"Format F{o['format']:02d}: {m} {per} (spread {_f(o['measure']['spread'])}, order 0 = "
                            f"first-stage). Kendall tau between the rankings of the same query under two orders: "
                            f"mean {_f(o['tau_mean'], 3)}, min {_f(o['tau_min'], 3)}; mean overlap of their top 10 "
                            f"{_f(o.get('top10_overlap'), 3)}; identical rankings in "
                            f"{_f(100 * o['identical_share'], 1)} % of query pairs."))
        blocks.append(("table", (["orders", "mean tau", "top-10 overlap", "identical rankings"],
                                 [[f"{p['orders'][0]} vs {p['orders'][1]}", _f(p["tau"], 3),
                                   _f(p.get("top10_overlap"), 3), f"{p['identical']}/{p['queries']}"]
                                  for p in o["pairs"]])))
    pb = summary.get("position_bias")
    blocks.append(("h2", "Position bias"))
    if not pb:
        blocks.append(("p", "No shuffled orders were run (use --orders M with M >= 1)."))
    else:
        blocks.append(("p", f"Over {pb['samples']} shuffled inputs (query x shuffle; shuffles make the position "
                            "independent of relevance): how often the document shown at position i ended at rank 1, "
                            "against an order-blind judge, and its mean final rank. Mean Kendall tau between the "
                            f"order shown and the output: {_f(pb['input_tau'], 3)} (about 0 when the input order "
                            "does not carry over)."))
        n = len(pb["top1"])
        blocks.append(("table", (["position shown", *[str(i + 1) for i in range(n)]],
                                 [["ends at rank 1", *[_f(x, 3) for x in pb["top1"]]],
                                  ["order-blind", *[_f(x, 3) for x in pb["uniform"]]],
                                  ["mean final rank", *[_f(x, 1) for x in pb["mean_final_rank"]]]])))
        if "position_png" in images:
            blocks.append(("img", (images["position_png"], "position bias")))
    blocks.append(("p", f"Written {summary.get('written', '')}; all numbers in `{JSON}`."))
    return blocks


def markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + body, ""]
        elif kind == "p":
            out += [body, ""]
        elif kind == "code":
            out += ["```", body, "```", ""]
        elif kind == "img":
            out += [f"![{body[1]}]({body[0]})", ""]
        elif kind == "table":
            head, rows = body
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left}th{background:#f3f3f3}pre{background:#f6f6f6;padding:.8em;white-space:pre-wrap;"
        "font-size:.85em}img{max-width:100%}")


def html_page(blocks: Sequence[Block], folder: Path, title: str) -> str:
    e = html.escape
    body: list[str] = []
    for kind, b in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{e(b)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b)}</p>")
        elif kind == "code":
            body.append(f"<pre>{e(b)}</pre>")
        elif kind == "img":
            png = folder / b[0]
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                body.append(f"<img alt='{e(b[1])}' src='data:image/png;base64,{data}'>")
        elif kind == "table":
            head, rows = b
            t = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
            t += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            body.append("".join(t) + "</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """Markdown's ``code`` and **bold** in a paragraph, as HTML."""
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


__all__ = ["JSON", "html_page", "markdown", "report_blocks", "write_outputs"]
