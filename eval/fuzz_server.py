"""Fuzz a real ``rerankkit serve`` process on loopback from its own OpenAPI schema (schemathesis), then overload it.

Phases:

1. **schema fuzz**: ``st run http://127.0.0.1:PORT/openapi.json --checks all`` with the hostile-text hook
   (``tests/schemathesis_hooks.py``): positive and negative cases, coverage and fuzzing phases, every
   check (no 5xx, documented statuses, response schemas, negative data refused, valid data accepted,
   405 with ``Allow`` for other methods). The HAR report gives the request count and the status codes.
2. **overload** (``--burst N``): N concurrent requests of ``max_documents`` documents against a small queue
   (``--max-queue``); every answer must be 200, or 503 with ``Retry-After`` and a JSON error body.
3. **afterwards**: ``/health`` is 200, a fixed request is ranked the same as before the fuzz, the
   server's RSS is read from ``/proc`` before and after, and SIGTERM stops it with exit code 0.

Writes a JSON summary (``--out``) and exits 1 when any phase fails. Short check (about a minute)::

    PYTHONPATH=$PWD python eval/fuzz_server.py --max-examples 10 --burst 16

The long run recorded in ``eval/fuzz.md``: see that file for the exact command.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"max-documents": 32, "max-document-chars": 2000, "max-query-chars": 500}
# 413 is how the server refuses a limit (maxItems/maxLength in the schema); schemathesis' default list lacks it
ST_CONFIG = """[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422]
"""
# a \uD800-\uDFFF escape that is not the first half of a pair followed by its second half
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})"
                               r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
PROBE = {"query": "what is bm25", "documents": ["BM25 is a bag-of-words ranking function.",
                                                "Cats sleep most of the day.", "Okapi BM25 weighs term frequency."]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def env() -> dict[str, str]:
    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


class Server:
    """``rerankkit serve PRESET`` in a child process on a free loopback port."""

    def __init__(self, preset: str, max_queue: int, request_timeout: float, sets: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "rerankkit.cli.main", "serve", preset, "--port", str(self.port),
               "--max-queue", str(max_queue), "--request-timeout", str(request_timeout)]
        for k, v in LIMITS.items():
            cmd += [f"--{k}", str(v)]
        for s in sets:
            cmd += ["--set", s]
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - read after the process ends
        self.proc = subprocess.Popen(cmd, env=env(), stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up within {timeout} s:\n{self.output()}")
            time.sleep(0.3)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return -9
        return self.proc.returncode


def run_schemathesis(url: str, max_examples: int, seed: int, workers: int, phases: str, timeout: float,
                     workdir: Path) -> dict[str, Any]:
    """One ``st run``; returns its exit code, output tail, request count and status codes (from the HAR)."""
    config = workdir / "schemathesis.toml"
    config.write_text(ST_CONFIG)
    har = workdir / "fuzz.har"
    cmd = ["st", "--config-file", str(config), "run", f"{url}/openapi.json", "--checks", "all",
           "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers), "--phases", phases,
           "--report", "har", "--report-har-path", str(har), "--no-color", "--request-timeout", "120",
           "--suppress-health-check", "all", "--generation-database", "none"]
    st_bin = Path(sys.executable).with_name("st")
    cmd[0] = str(st_bin) if st_bin.exists() else "st"
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env={**env(), "SCHEMATHESIS_HOOKS": "schemathesis_hooks"}, capture_output=True,
                       text=True, timeout=timeout, cwd=workdir)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"command": " ".join(cmd[1:]), "exit_code": p.returncode, "wall_s": round(wall, 1),
                           "output_tail": (p.stdout + p.stderr)[-6000:]}
    out.update(har_summary(har))
    return out


def har_summary(har: Path) -> dict[str, Any]:
    """Requests per operation and status codes, JSON bodies of refusals, from a HAR file."""
    if not har.exists():
        return {"requests": 0, "statuses": {}}
    entries = json.loads(har.read_text(encoding="utf-8", errors="replace"))["log"]["entries"]
    statuses: collections.Counter[str] = collections.Counter()
    per_op: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    not_json = surrogate_requests = repaired = 0
    for e in entries:
        sent = e["request"].get("postData", {}).get("text", "")
        if _SURROGATE_ESCAPE.search(sent):
            surrogate_requests += 1
        answer = e["response"].get("content", {}).get("text", "")
        if '"replaced_chars":' in answer and '"replaced_chars":0' not in answer:
            repaired += 1
        status = str(e["response"]["status"])
        path = "/" + e["request"]["url"].split("/", 3)[-1].split("?")[0]
        statuses[status] += 1
        per_op[f"{e['request']['method']} {path}"][status] += 1
        mime = e["response"].get("content", {}).get("mimeType", "")
        if "json" not in mime:
            not_json += 1
    return {"requests": len(entries), "statuses": dict(sorted(statuses.items())),
            "per_operation": {k: dict(sorted(v.items())) for k, v in sorted(per_op.items())},
            "responses_not_json": not_json, "requests_with_lone_surrogates": surrogate_requests,
            "ranked_with_replaced_chars": repaired}


def burst(url: str, n: int) -> dict[str, Any]:
    """N concurrent full-size requests; every answer must be 200 or a JSON 503 with Retry-After."""
    import httpx

    docs = [f"document {i}: " + "bm25 ranks documents by term statistics " * 40 for i in range(LIMITS["max-documents"])]
    body = {"query": "what is bm25", "documents": docs}

    def one(_: int) -> tuple[int, bool]:
        r = httpx.post(url + "/v1/rerank", json=body, timeout=600)
        ok = r.status_code == 200 or (r.status_code == 503 and "retry-after" in r.headers
                                      and isinstance(r.json().get("message"), str))
        return r.status_code, ok

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    statuses = collections.Counter(str(s) for s, _ in results)
    return {"requests": n, "statuses": dict(sorted(statuses.items())), "all_ok": all(ok for _, ok in results),
            "wall_s": round(time.perf_counter() - t0, 1)}


def probe(url: str) -> list[int] | None:
    import httpx

    r = httpx.post(url + "/v1/rerank", json=PROBE, timeout=120)
    return [x["index"] for x in r.json()["results"]] if r.status_code == 200 else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cosine-minilm", help="a cheap offline preset (default cosine-minilm)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--max-examples", type=int, default=10, help="schemathesis examples per operation and phase")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--phases", default="coverage,fuzzing")
    ap.add_argument("--st-timeout", type=float, default=3600, help="seconds before the schemathesis run is killed")
    ap.add_argument("--burst", type=int, default=16, help="concurrent requests in the overload phase (0: skip)")
    ap.add_argument("--max-queue", type=int, default=4, help="the server's --max-queue during the run")
    ap.add_argument("--request-timeout", type=float, default=300.0, help="the server's --request-timeout")
    ap.add_argument("--out", type=Path, help="write the JSON summary here")
    args = ap.parse_args(argv)

    summary: dict[str, Any] = {"preset": args.preset, "limits": LIMITS, "max_queue": args.max_queue,
                               "request_timeout_s": args.request_timeout}
    server = Server(args.preset, args.max_queue, args.request_timeout, args.sets)
    ok = True
    try:
        server.wait_ready()
        before = probe(server.url)
        summary["rss_mib_before"] = rss_mib(server.proc.pid)
        with tempfile.TemporaryDirectory() as tmp:
            st = run_schemathesis(server.url, args.max_examples, args.seed, args.workers, args.phases,
                                  args.st_timeout, Path(tmp))
        summary["schemathesis"] = st
        summary["rss_mib_after_fuzz"] = rss_mib(server.proc.pid)
        server_errors = sum(v for k, v in st["statuses"].items() if k.startswith("5"))
        ok &= st["exit_code"] == 0 and st["requests"] > 0 and server_errors == 0 and st["responses_not_json"] == 0
        if args.burst:
            summary["burst"] = burst(server.url, args.burst)
            ok &= summary["burst"]["all_ok"]
        import httpx

        summary["health_after"] = httpx.get(server.url + "/health", timeout=30).json()
        summary["same_ranking_after"] = before is not None and probe(server.url) == before
        summary["rss_mib_after"] = rss_mib(server.proc.pid)
        ok &= summary["health_after"].get("status") == "ok" and summary["same_ranking_after"]
    finally:
        summary["exit_code_on_sigterm"] = server.stop()
        if summary["exit_code_on_sigterm"] != 0:
            summary["server_output_tail"] = server.output()[-4000:]
    ok &= summary["exit_code_on_sigterm"] == 0
    summary["ok"] = bool(ok)
    text = json.dumps(summary, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
