"""dtype="auto": bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere; explicit types pass through."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from rerankkit.backends.precision import _cpuinfo_bf16, cpu_native_bf16, resolve_dtype
from rerankkit.errors import ConfigError


def _torch(amx: bool, avx512_bf16: bool, cuda_bf16: bool = True) -> SimpleNamespace:
    """A stand-in for the two hardware probes torch exposes (the I/O edge), nothing else."""
    cpu = SimpleNamespace(_is_amx_tile_supported=lambda: amx, _is_avx512_bf16_supported=lambda: avx512_bf16)
    cuda = SimpleNamespace(is_bf16_supported=lambda: cuda_bf16)
    return SimpleNamespace(cpu=cpu, cuda=cuda)


@pytest.mark.parametrize("asked,name", [("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16"),
                                        ("float32", "float32"), ("BF16", "bfloat16")])
def test_explicit_types_pass_through(asked, name):
    assert resolve_dtype(asked, "cpu", _torch(False, False)).name == name
    assert resolve_dtype(asked, "cuda", _torch(True, True)).name == name


def test_auto_follows_the_hardware():
    assert resolve_dtype("auto", "cpu", _torch(amx=True, avx512_bf16=True)).name == "bfloat16"
    assert "AMX" in resolve_dtype("auto", "cpu", _torch(amx=True, avx512_bf16=False)).reason
    assert resolve_dtype("auto", "cpu", _torch(amx=False, avx512_bf16=True)).name == "bfloat16"
    plain = resolve_dtype("auto", "cpu", _torch(amx=False, avx512_bf16=False))
    assert plain.name == "float32" and "without native bf16" in plain.reason
    assert resolve_dtype("auto", "cuda:0", _torch(False, False)).name == "bfloat16"
    assert resolve_dtype("auto", "cuda", _torch(False, False, cuda_bf16=False)).name == "float16"
    assert resolve_dtype("auto", "mps", _torch(True, True)).name == "float32"


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="dtype must be one of"):
        resolve_dtype("fp8", "cpu")


def test_this_machine_is_detected_as_its_cpu_flags_say():
    torch = pytest.importorskip("torch")
    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo")
    flags = next((line.split(":", 1)[1].split() for line in info.read_text().splitlines()
                  if line.startswith("flags")), [])
    native = "amx_bf16" in flags or "avx512_bf16" in flags
    assert bool(cpu_native_bf16(torch)) == native == bool(_cpuinfo_bf16())
    assert resolve_dtype("auto", "cpu", torch).name == ("bfloat16" if native else "float32")
