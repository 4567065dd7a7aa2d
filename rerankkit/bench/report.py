"""Reports of a benchmark's results: Markdown, a self-contained HTML page, and the cost plot (PNG)."""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError
from .check import CheckRow, check
from .compare import RESAMPLES, BaselineRow, against_baseline
from .config import BenchConfig
from .results import read_results

log = logging.getLogger(__name__)
PLOT = "cost.png"


def write_report(config: BenchConfig, out_dir: str | Path, only: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``cost.png`` in ``out_dir`` from its ``results.jsonl``."""
    out = Path(out_dir)
    records = ordered(config, read_results(out))
    rows = check(config, records, only) if config.expectations() else []
    paths: dict[str, Path] = {}
    measure = config.measures[0]
    try:
        from .plot import cost_plot

        paths["png"] = cost_plot(records, measure, out / PLOT, f"{config.name}: {measure} vs cost")
    except MissingExtraError as exc:
        log.warning("no plot: %s", exc)
    tables = _tables(config, records, rows)
    tables["baseline"] = _baseline_table(against_baseline(config, records, out))
    paths["md"] = out / "report.md"
    paths["md"].write_text(_markdown(config, records, tables, "png" in paths), encoding="utf-8")
    paths["html"] = out / "report.html"
    paths["html"].write_text(_html(config, records, tables, paths.get("png")), encoding="utf-8")
    return paths


def ordered(config: BenchConfig, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of this config's pairs, in config order."""
    rank = {(c.name, d): i for i, (c, d) in enumerate(config.pairs())}
    keep = [r for r in records if (r["condition"], r["dataset"]) in rank]
    return sorted(keep, key=lambda r: rank[(r["condition"], r["dataset"])])


def _tables(config: BenchConfig, records: list[dict[str, Any]], rows: list[CheckRow]) -> dict[str, Any]:
    checks = {(r.condition, r.dataset, r.measure): r for r in rows}
    eff_head = ["condition", "dataset", "queries", *config.measures, "expected", "check"]
    eff = []
    cost_head = ["condition", "dataset", "calls/query", "model calls (now)", "cached", "prompt tok/query",
                 "gen tok/query", "model s/query", "wall s (now)", "model load s"]
    cost = []
    for r in records:
        label = r.get("dataset_label", r["dataset"])
        if r.get("error"):
            eff.append([r["condition"], label, "-", *["error"] * len(config.measures), "", r["error"][:80]])
            continue
        exp, verdict = [], []
        for m in config.measures:
            c = checks.get((r["condition"], r["dataset"], m))
            if c is not None:
                exp.append(f"{m} {c.expected:.4f} ± {c.tolerance:g}")
                verdict.append(c.status if c.delta is None else f"{c.status} ({c.delta:+.4f})")
        eff.append([r["condition"], label, str(r.get("queries", "")),
                    *[_fmt(r["metrics"].get(m)) for m in config.measures], "; ".join(exp), "; ".join(verdict)])
        pq = r.get("per_query", {})
        rerank = r.get("stages", {}).get("rerank", {})
        cost.append([r["condition"], label, f"{pq.get('requests', 0):.1f}", str(r.get("model_calls", 0)),
                     str(r.get("cached_calls", 0)), f"{pq.get('prompt_tokens', 0):.0f}",
                     f"{pq.get('generated_tokens', 0):.0f}", f"{pq.get('model_s', 0):.3f}",
                     f"{r.get('wall_s', 0):.2f}", f"{rerank.get('load_s', 0):.1f}" if rerank else "-"])
    return {"eff": (eff_head, eff), "cost": (cost_head, cost), "checks": rows}


def _baseline_table(rows: list[BaselineRow]) -> tuple[list[str], list[list[str]]]:
    head = ["condition", "dataset", "measure", "baseline → condition", "Δ", "W/T/L", "95 % CI of Δ", "p (t-test)",
            "p (bootstrap)"]
    body = []
    for r in rows:
        c = r.result
        body.append([r.condition, r.dataset, r.measure, f"{c.mean_b:.4f} → {c.mean_a:.4f}", f"{c.diff:+.4f}",
                     f"{c.wins}/{c.ties}/{c.losses}", f"{c.ci_low:+.4f} … {c.ci_high:+.4f}", _p(c.p_t), _p(c.p_boot)])
    return head, body


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


_BASELINE_DEFS = ("Per query, against the baseline condition: W/T/L counts the queries where the condition scores "
                  "higher / the same / lower; Δ is the mean difference (condition - baseline) with its 95 % "
                  "bootstrap interval; p-values are two-sided, from the paired t-test and the paired bootstrap "
                  "({n} resamples) over queries, one test per row (no correction for the number of rows).")


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{float(v):.4f}"


def _context(config: BenchConfig, records: list[dict[str, Any]]) -> list[str]:
    done = [r for r in records if not r.get("error")]
    lines = [f"Config: `{config.path.name}` (sha256 {config.sha256[:12]}), {len(records)} of "
             f"{len(config.pairs())} runs in `results.jsonl`."]
    if done:
        last = done[-1]
        mach = last.get("machine", {})
        vers = ", ".join(f"{k} {v}" for k, v in last.get("versions", {}).items())
        lines.append(f"Machine: {mach.get('platform', '?')}, {mach.get('cpus', '?')} CPUs"
                     + (f", GPU {mach['gpu']}" if mach.get("gpu") else "")
                     + (f", torch threads {mach['torch_threads']}" if mach.get("torch_threads") else "") + ".")
        lines.append(f"Versions: {vers}.")
    lines.append(f"Report written {datetime.now(UTC).isoformat(timespec='seconds')}.")
    return lines


_DEFS = ("calls/query: requests the strategy made per query (answered by the model now or from the cache); "
         "model calls (now) and wall s (now): work done in the run that wrote the line (0 calls when every "
         "answer came from the cache); tokens/query and model s/query count cached answers at what they cost "
         "when they were computed, so they describe the method, not the cache. Model load time is separate.")


def _markdown(config: BenchConfig, records: list[dict[str, Any]], tables: dict[str, Any], plot: bool) -> str:
    parts = [f"# Benchmark: {config.name}", ""]
    if config.description:
        parts += [config.description.strip(), ""]
    parts += [*_context(config, records), "", "## Effectiveness", "", _md_table(*tables["eff"]), ""]
    if tables["baseline"][1]:
        parts += [f"## Against the baseline ({config.baseline})", "", _md_table(*tables["baseline"]), "",
                  _BASELINE_DEFS.format(n=RESAMPLES), ""]
    parts += ["## Cost", "", _md_table(*tables["cost"]), "", _DEFS, ""]
    if plot:
        parts += [f"![{config.measures[0]} vs cost]({PLOT})", ""]
    notes = [(c.name, c.notes) for c in config.conditions if c.notes]
    if notes:
        parts += ["## Notes", "", *[f"- **{n}**: {t.strip()}" for n, t in notes], ""]
    return "\n".join(parts)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left}th{background:#f3f3f3}td.ok{color:#17702a}td.bad{color:#b00020;font-weight:bold}"
        "img{max-width:100%}p.small{font-size:.85em;color:#555}")


def _html(config: BenchConfig, records: list[dict[str, Any]], tables: dict[str, Any], png: Path | None) -> str:
    e = html.escape
    body = [f"<h1>Benchmark: {e(config.name)}</h1>"]
    if config.description:
        body.append(f"<p>{e(config.description.strip())}</p>")
    body += [f"<p class='small'>{e(line)}</p>" for line in _context(config, records)]
    body += ["<h2>Effectiveness</h2>", _html_table(*tables["eff"])]
    if tables["baseline"][1]:
        body += [f"<h2>Against the baseline ({e(config.baseline)})</h2>", _html_table(*tables["baseline"]),
                 f"<p class='small'>{e(_BASELINE_DEFS.format(n=RESAMPLES))}</p>"]
    body += ["<h2>Cost</h2>", _html_table(*tables["cost"]), f"<p class='small'>{e(_DEFS)}</p>"]
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        body.append(f"<img alt='{e(config.measures[0])} vs cost' src='data:image/png;base64,{data}'>")
    notes = [(c.name, c.notes) for c in config.conditions if c.notes]
    if notes:
        body += ["<h2>Notes</h2><ul>", *[f"<li><b>{e(n)}</b>: {e(t.strip())}</li>" for n, t in notes], "</ul>"]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{e(config.name)} benchmark</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape

    def td(text: str) -> str:
        cls = " class='ok'" if text.startswith("ok") else " class='bad'" if text.startswith(("FAIL", "missing",
                                                                                              "error")) else ""
        return f"<td{cls}>{e(str(text))}</td>"

    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(td(c) for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return "".join(out)
