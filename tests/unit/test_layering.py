"""No module imports from a higher layer (function-level imports included): the package is a stack, not a web."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rerankkit"

# lowest first; a module may import its own part and anything in a lower layer
LAYERS = [
    {"errors", "_version"},
    {"types", "options", "registry", "_lazy", "locations"},
    {"_toml_spec", "spec", "models", "answer_cache", "text"},
    {"backends"},
    {"prompts"},
    {"strategies", "reps"},
    {"overrides", "presets", "data"},
    {"reranker", "aio", "batching", "eval", "retrievers", "executors"},
    {"train", "bench", "robustness", "server", "integrations"},
    {"adapt"},
    {"cli"},
    {"__init__", "__main__"},
]
LEVEL = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _part(module: str) -> str:
    """``rerankkit.backends.hf`` -> ``backends``; ``rerankkit`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from .. import x: x is a module of that package, or a name of its root
                    for a in node.names:
                        sub = f"{target}.{a.name}"
                        out.append((node.lineno, sub if target != "rerankkit" or _part(sub) in LEVEL else target))
                    continue
            else:
                target = node.module or ""
            out.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, t) for line, t in out if t == "rerankkit" or t.startswith("rerankkit.")]


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts <= set(LEVEL), f"give these a layer: {sorted(parts - set(LEVEL))}"


def test_no_module_imports_from_a_higher_layer():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = _part(".".join(rel.parts))
        for line, target in _imports(path):
            there = _part(target)
            if there in LEVEL and LEVEL[there] > LEVEL[here]:
                bad.append(f"{rel}.py:{line} ({here}, layer {LEVEL[here]}) imports {target} (layer {LEVEL[there]})")
    assert not bad, "\n".join(bad)
