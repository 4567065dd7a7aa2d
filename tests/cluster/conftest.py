"""A real two-node Ray cluster on loopback for the tests of this folder: started once, torn down after.

``ray start --head`` plus ``ray start --address=...`` (one CPU each), both blocking in process groups the
fixture owns, so teardown stops exactly these processes (and nothing else Ray on the machine).
Workers import this checkout and read the same data, model cache and offline settings as the tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_nodes(address: str, n: int, timeout: float, procs: list[subprocess.Popen]) -> None:
    """Wait until ``n`` nodes are alive (checked from a short-lived subprocess, so this process stays clean)."""
    code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"`ray start` exited with {p.returncode}: {p.stdout.read() if p.stdout else ''}")
        out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, RAY_AUTH_MODE="disabled"))
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        time.sleep(1.0)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {n} nodes in {timeout:.0f} s")


@pytest.fixture(scope="session")
def ray_cluster(smollm2_dir, data_root):
    """``HOST:PORT`` of a running 2-node cluster (1 CPU per node); the test process is its driver."""
    ray = pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the `ray` command is not installed next to this Python")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="rk-ray-"))  # short: Ray's socket paths must stay under 108 bytes
    # RAY_AUTH_MODE=disabled on every side: Ray 2.60 turns token authentication on for a node that finds
    # ~/.ray/auth_token (a local `ray.init()` writes one), and a driver without the token is then refused
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", RERANKKIT_DATA=str(data_root),
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--block", "--disable-usage-stats",
              "--object-store-memory=200000000"]  # 200 MB per node: the tests move kilobytes
    head = [str(ray_bin), "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
            f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}", *common]
    auth = os.environ.get("RAY_AUTH_MODE")
    procs = [subprocess.Popen(head, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)]
    address = f"127.0.0.1:{port}"
    try:
        _wait_nodes(address, 1, 120, procs)
        worker = [str(ray_bin), "start", f"--address={address}", f"--node-manager-port={_free_port()}",
                  f"--object-manager-port={_free_port()}", *common]
        procs.append(subprocess.Popen(worker, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
        _wait_nodes(address, 2, 120, procs)
        auth = os.environ.get("RAY_AUTH_MODE")
        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address=address, logging_level="ERROR", include_dashboard=False)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth
        # each blocking `ray start` leads its own process group: stop those groups (a graceful stop takes
        # ~30 s on 2 cores and nothing of these throwaway nodes needs saving)
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        _kill_leftovers(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _kill_leftovers(temp: Path) -> None:
    """Any process still running from this cluster's temp dir (a worker that left the group), by pid."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(temp) in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
