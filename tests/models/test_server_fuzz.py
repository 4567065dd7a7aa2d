"""Schemathesis against a real ``rerankkit serve cosine-minilm`` process, bounded for CI (``eval/fuzz_server.py``).

A fixed seed and ``--max-examples 10`` per operation and phase (coverage + fuzzing: about 280 requests),
hostile text injected into the bodies, every schemathesis check; then 16 concurrent full-size requests
against a queue of 4 (each answer 200 or a JSON 503 with Retry-After), then the server must still be
healthy, rank a fixed request as before, and stop with exit code 0 on SIGTERM. The long run and its
numbers are in ``eval/fuzz.md``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_server", ROOT / "eval" / "fuzz_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_fuzz_of_a_served_preset(tmp_path):
    if shutil.which("st", path=str(Path(sys.executable).parent)) is None and shutil.which("st") is None:
        pytest.skip("the schemathesis command line (st) is not installed")
    fuzz = _fuzz_module()
    out = tmp_path / "fuzz.json"
    rc = fuzz.main(["--max-examples", "10", "--burst", "16", "--max-queue", "4", "--st-timeout", "300",
                    "--out", str(out)])
    import json

    summary = json.loads(out.read_text())
    st = summary["schemathesis"]
    assert st["exit_code"] == 0, st["output_tail"]
    assert st["requests"] >= 200 and not any(code.startswith("5") for code in st["statuses"])
    assert st["responses_not_json"] == 0
    assert {"200", "400", "405", "413"} <= set(st["statuses"])
    assert st["requests_with_lone_surrogates"] > 0 and st["ranked_with_replaced_chars"] > 0
    assert summary["burst"]["all_ok"] and set(summary["burst"]["statuses"]) <= {"200", "503"}
    assert summary["health_after"]["status"] == "ok" and summary["same_ranking_after"]
    assert summary["exit_code_on_sigterm"] == 0
    assert rc == 0
