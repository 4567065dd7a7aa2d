"""A real llama.cpp OpenAI-compatible server (llama-cpp-python) with the packaged SmolLM2 GGUF.

``start_llama_server()`` launches ``python -m llama_cpp.server`` on 127.0.0.1 and a free port and
waits until it lists its model; tests skip when llama-cpp-python or the GGUF is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class LlamaServer:
    proc: subprocess.Popen
    port: int
    gguf: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gguf_or_skip() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (scripts/setup installs it)")
    from rerankkit.models import packaged_path

    try:
        return packaged_path("smollm2-135m-instruct")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged SmolLM2 not installed: {exc}")


def start_llama_server(log_dir: Path, *extra: str, threads: int = 1, n_ctx: int = 2048,
                       wait_s: float = 120.0, model_file: Path | None = None) -> LlamaServer:
    """Start the server (on the packaged GGUF, or ``model_file``) and wait until it answers;
    raise with its log if it does not."""
    import httpx

    gguf = gguf_or_skip()
    gguf = model_file or gguf
    port = free_port()
    log = log_dir / f"llama-server-{port}.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch",
           str(threads), "--model_alias", "smollm2-135m-instruct", *extra]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    server = LlamaServer(proc, port, gguf, log)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/models", timeout=2).status_code == 200:
                return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"llama.cpp server did not answer within {wait_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """One llama.cpp server for the session (its default logits_all=true gives log-probs; embeddings on:
    per-token vectors, which the openai backend pools)."""
    server = start_llama_server(tmp_path_factory.mktemp("llama"), "--embedding", "true")
    yield server
    server.stop()
