"""Requests in flight, 1 vs 8: pointwise scoring throughput through the openai backend.

Side by side in one process, alternating (1, 8, 1, 8, ...) so both see the same machine load:

- ``llama.cpp``: the packaged SmolLM2 GGUF behind llama-cpp-python's server on 127.0.0.1 (it evaluates
  one request at a time, so in-flight requests can only overlap HTTP, JSON and queueing with compute);
- ``latency stub``: a stub server that answers every request after a fixed delay, concurrently (what a
  server with parallel slots or a remote API looks like from the client), isolating the client's own
  concurrency.

    python eval/serving_concurrency.py --docs 48 --repeats 2 --out eval/results/serving_concurrency.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent / "tests"))  # the stub server

from llama_server import llama_server  # noqa: E402

from rerankkit.backends.base import ScoreRequest  # noqa: E402
from rerankkit.backends.openai_compat import OpenAIBackend  # noqa: E402
from rerankkit.data import load_dataset  # noqa: E402
from rerankkit.models import packaged_path  # noqa: E402
from rerankkit.prompts.template import load_template  # noqa: E402
from rerankkit.strategies.scoring import flatten_choices  # noqa: E402


def requests(n_docs: int) -> list[ScoreRequest]:
    template = load_template("yes-no")
    choices, _ = flatten_choices(template.choices)
    run = load_dataset("trec-dl-2019/passage").candidates()
    out = []
    for ranking in run.values():
        for sd in ranking.docs:
            out.append(ScoreRequest(template.prompt(query=ranking.query.text, doc=sd.doc.text[:600]), choices))
            if len(out) == n_docs:
                return out
    return out


def measure(url: str, reqs: list[ScoreRequest], concurrency: int, **kw) -> float:
    be = OpenAIBackend("packaged:smollm2-135m-instruct", base_url=url, max_concurrency=concurrency, **kw)
    t = time.perf_counter()
    be.score(reqs)
    wall = time.perf_counter() - t
    be.close()
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--stub-delay", type=float, default=0.05)
    ap.add_argument("--servers", default="llama,stub")
    ap.add_argument("--out", default="eval/results/serving_concurrency.json")
    args = ap.parse_args()
    reqs = requests(args.docs)
    report = {"docs": len(reqs), "repeats": args.repeats, "rows": []}

    from stub_openai import MODELS, StubServer, completion

    top = {c: math.log(0.9 / (i + 1) ** 2) for i, c in enumerate(reqs[0].choices)}
    stub = StubServer(lambda path, body: (200, MODELS if path.endswith("/models") else completion(top), {}),
                      delay=args.stub_delay)
    servers = [("latency stub (%.0f ms/request)" % (1000 * args.stub_delay), stub.url, {"logit_bias": False})]
    servers = servers if "stub" in args.servers else []
    with llama_server(packaged_path("smollm2-135m-instruct"), threads=args.threads) as url:
        if "llama" in args.servers:
            servers.insert(0, (f"llama.cpp, SmolLM2-135M Q4_1, {args.threads} threads", url, {}))
            measure(url, reqs[:4], 1)  # warm-up
        for name, u, kw in servers:
            walls: dict[int, list[float]] = {1: [], 8: []}
            for _ in range(args.repeats):
                for c in (1, 8):
                    walls[c].append(measure(u, reqs, c, **kw))
            best = {c: min(w) for c, w in walls.items()}
            row = {"server": name, "walls_s": walls, "prompts_per_s_1": round(len(reqs) / best[1], 2),
                   "prompts_per_s_8": round(len(reqs) / best[8], 2), "ratio_8_vs_1": round(best[1] / best[8], 2)}
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    stub.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
