"""What ``dtype="auto"`` means: the fastest exact-enough floating-point type for the device.

- CUDA: bf16 where the GPU supports it (Ampere and newer), else fp16.
- CPU: bf16 when the processor computes bf16 natively — Intel AMX (``amx_bf16``) or AVX512-BF16 — where
  it is about 3× faster than fp32 for transformer inference (measured here: eval/speed.md); fp32 elsewhere,
  where bf16 is emulated and slower than fp32.

The decision is *detected* (torch's own CPU-capability probes, else ``/proc/cpuinfo`` flags), never guessed
from the machine's name, and it comes with the reason, which ``rerankkit doctor`` prints.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DTYPE_NAMES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
               "fp16": "float16", "float16": "float16", "auto": "auto"}


@dataclass(frozen=True)
class DtypeChoice:
    """A resolved dtype (a torch attribute name such as ``"bfloat16"``) and why it was chosen."""

    name: str
    reason: str


def resolve_dtype(requested: str, device: str, torch: Any | None = None) -> DtypeChoice:
    """Resolve ``requested`` (fp32 | bf16 | fp16 | auto, or the torch names) for ``device`` (cpu | cuda[:i])."""
    key = str(requested).lower()
    if key not in DTYPE_NAMES:
        raise ConfigError(f"dtype must be one of {', '.join(sorted(DTYPE_NAMES))}, not {requested!r}")
    name = DTYPE_NAMES[key]
    if name != "auto":
        return DtypeChoice(name, "asked for explicitly")
    if str(device).startswith("cuda"):
        if torch is not None and not _cuda_bf16(torch, device):
            return DtypeChoice("float16", "auto on a CUDA device without bf16 support")
        return DtypeChoice("bfloat16", "auto on CUDA")
    if str(device) != "cpu":
        return DtypeChoice("float32", f"auto on device {device!r}: no native bf16 detected")
    native = cpu_native_bf16(torch)
    if native:
        return DtypeChoice("bfloat16", f"auto on a CPU with native bf16 ({native})")
    return DtypeChoice("float32", "auto on a CPU without native bf16 (no AMX-BF16 or AVX512-BF16): fp32 is faster")


def cpu_native_bf16(torch: Any | None = None) -> str:
    """The CPU feature that computes bf16 natively (``"AMX-BF16"``, ``"AVX512-BF16"``), or ``""``."""
    if torch is not None:
        probes = getattr(torch, "cpu", None)
        try:
            if probes is not None and probes._is_amx_tile_supported():
                return "AMX-BF16"
            if probes is not None and probes._is_avx512_bf16_supported():
                return "AVX512-BF16"
            if probes is not None and hasattr(probes, "_is_avx512_bf16_supported"):
                return ""
        except (AttributeError, RuntimeError):
            pass  # an older torch without the probes: read the flags ourselves
    return _cpuinfo_bf16()


@functools.lru_cache(maxsize=1)
def _cpuinfo_bf16() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    if "amx_bf16" in flags:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return ""


def _cuda_bf16(torch: Any, device: str) -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError, AssertionError):
        return True
