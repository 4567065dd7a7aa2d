"""Load test of `rerankkit serve` on loopback: N concurrent clients for a fixed time, with and without micro-batching.

For each mode a fresh server process is started (`rerankkit serve PRESET --max-batch B`), warmed up with
two requests, then CLIENTS concurrent clients send rerank requests (one TREC DL19 query with its first
DOCS BM25 passages, cycling over the 43 queries) for DURATION seconds; a client starts no request after
that, and requests still open at DURATION + GRACE seconds are cancelled and counted as errors.
Requests are also capped at MAX_REQUESTS per mode, so the test always stops by itself.

Reported per mode: completed requests, errors (non-200 or transport errors), requests/s (completed /
wall time until the last answer), p50/p95/max latency, mean requests per model call, server CPU
seconds per request (robust to other load on the machine), server RSS before/after and its peak.

    nice -n 10 python eval/server_load.py --clients 32 --duration 60 --docs 5 --out eval/results/server_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in MiB, and CPU seconds (user + system) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def load_requests(data_root: Path, n_docs: int, distinct: bool = False) -> list[dict]:
    """One request per DL19 query with its first ``n_docs`` BM25 passages (43 requests, cycled by the clients);
    ``distinct``: every consecutive slice of ``n_docs`` of the top 100 too (43 x 100 // n_docs requests, no two
    alike), so that an engine with a prefix cache (vLLM) cannot answer a repeated request from its cache."""
    with gzip.open(data_root / "trec-dl19-passage" / "bm25_dl19_top100.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    slices = range(0, 100 // n_docs if distinct else 1)
    return [{"model": "m", "query": r["query"], "top_n": 3,
             "documents": [h["content"] for h in r["hits"][k * n_docs:(k + 1) * n_docs]]}
            for k in slices for r in rows if len(r["hits"]) >= (k + 1) * n_docs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(preset: str, max_batch: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rerankkit.cli.main", "serve", preset, "--host", "127.0.0.1", "--port", str(port),
           "--max-batch", str(max_batch), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start in 300 s")
        time.sleep(0.5)


async def drive(url: str, payloads: list[dict], clients: int, duration: float, grace: float,
                max_requests: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    counter = 0
    t0 = time.perf_counter()
    stop_at = t0 + duration

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal counter
        while time.perf_counter() < stop_at and counter < max_requests:
            body = payloads[counter % len(payloads)]
            counter += 1
            t = time.perf_counter()
            try:
                r = await http.post(url + "/v1/rerank", json=body)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.text[:200]}")
                continue
            latencies.append(time.perf_counter() - t)
            sizes.append(r.json()["meta"]["rerankkit"]["batch_requests"])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=duration + grace, limits=limits) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(clients)]
        done, pending = await asyncio.wait(tasks, timeout=duration + grace)
        for t in pending:
            t.cancel()
            errors.append("unfinished at the deadline")
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def q(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else float("nan")

    return {"completed": len(lat), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "wall_s": round(wall, 1), "rps": round(len(lat) / wall, 3), "p50_s": q(0.50), "p95_s": q(0.95),
            "max_s": round(lat[-1], 3) if lat else None,
            "mean_requests_per_call": round(statistics.mean(sizes), 2) if sizes else None}


def run_mode(name: str, max_batch: int, args: argparse.Namespace, payloads: list[dict]) -> dict:
    proc, url = start_server(args.preset, max_batch, args.server_args)
    try:
        for body in (payloads[-2:] if args.distinct else payloads[:2]):  # warm-up (with --distinct, never sent again)
            httpx.post(url + "/v1/rerank", json=body, timeout=300).raise_for_status()
        before = proc_status(proc.pid)
        print(f"[{name}] server up (pid {proc.pid}, RSS {before['VmRSS']:.0f} MiB); "
              f"{args.clients} clients for {args.duration:.0f} s", file=sys.stderr, flush=True)
        stats = asyncio.run(drive(url, payloads, args.clients, args.duration, args.grace, args.max_requests))
        after = proc_status(proc.pid)
        health = httpx.get(url + "/health", timeout=10).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed"
    cpu = after["cpu_s"] - before["cpu_s"]
    stats.update({
        "mode": name, "max_batch": max_batch, "server_exit": rc,
        "server_cpu_s_per_request": round(cpu / max(1, stats["completed"]), 3),
        "rss_before_mib": round(before["VmRSS"]), "rss_after_mib": round(after["VmRSS"]),
        "rss_peak_mib": round(after["VmHWM"]), "health_after": health,
    })
    print(json.dumps(stats), file=sys.stderr, flush=True)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="pointwise-smollm2-135m")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--grace", type=float, default=240.0, help="seconds after DURATION before open requests fail")
    ap.add_argument("--max-requests", type=int, default=20_000, help="cap on requests per mode")
    ap.add_argument("--docs", type=int, default=5, help="passages per request")
    ap.add_argument("--batched", type=int, default=32, help="--max-batch of the micro-batching server")
    ap.add_argument("--data", default=os.environ.get("RERANKKIT_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--server-args", nargs=argparse.REMAINDER, default=[], help="more `rerankkit serve` options")
    ap.add_argument("--distinct", action="store_true",
                    help="no request repeats (slices of the top 100; requests are capped at their number)")
    ap.add_argument("--out", default="eval/results/server_load.json")
    args = ap.parse_args()

    payloads = load_requests(Path(args.data), args.docs, args.distinct)
    if args.distinct:
        args.max_requests = min(args.max_requests, len(payloads) - 2)  # the last two are the warm-up
    load_before = os.getloadavg()
    rows = [run_mode("micro-batching", args.batched, args, payloads), run_mode("no batching", 1, args, payloads)]
    result = {"preset": args.preset, "clients": args.clients, "duration_s": args.duration, "docs_per_request": args.docs,
              "distinct_requests": args.distinct, "max_requests": args.max_requests,
              "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "speedup_rps": round(rows[0]["rps"] / rows[1]["rps"], 2) if rows[1]["rps"] else None,
              "speedup_cpu_per_request": round(rows[1]["server_cpu_s_per_request"]
                                               / max(1e-9, rows[0]["server_cpu_s_per_request"]), 2),
              "command": " ".join(["python", *sys.argv]), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| mode | completed | errors | req/s | p50 s | p95 s | req/model call | server CPU s/req | RSS before→after (peak) MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['completed']} | {r['errors']} | {r['rps']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['mean_requests_per_call']} | {r['server_cpu_s_per_request']} | "
              f"{r['rss_before_mib']}→{r['rss_after_mib']} ({r['rss_peak_mib']}) |")
    print(f"\nspeed-up (req/s): {result['speedup_rps']}x; CPU per request: {result['speedup_cpu_per_request']}x")


if __name__ == "__main__":
    main()
