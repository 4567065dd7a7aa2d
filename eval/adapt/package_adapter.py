"""Ship an adapter trained by `rerankkit adapt` inside the package (only after it measured better than BM25).

    python eval/adapt/package_adapter.py runs/adapt/dl-distill --name dl-distill-smollm2 \
        --evidence "DL19 0.xxxx vs BM25 0.5058, DL20 0.xxxx vs BM25 0.4796 (eval/adapt.md)"

Copies OUTPUT_DIR/train/adapter to rerankkit/adapters/NAME/ with its weights stored as float16 (LoRA weights
are small; peft casts them back when loading), writes TRAINED_ON.md from OUTPUT_DIR/adapt.json (collection,
sampled documents, generated queries, teacher, seed, steps, the evidence given), and adds a preset row NAME
(adapter = "packaged:NAME") to rerankkit/presets/rerankers/adapted.toml.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    import tomllib

    import tomli_w
    import torch
    from safetensors.torch import load_file, save_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output_dir")
    ap.add_argument("--name", required=True)
    ap.add_argument("--evidence", required=True, help="the measured numbers that justify shipping it")
    a = ap.parse_args()
    out = Path(a.output_dir)
    rec = json.loads((out / "adapt.json").read_text())
    src = Path(rec["train"]["adapter"])
    dst = REPO / "rerankkit" / "adapters" / a.name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    weights = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(src / "adapter_model.safetensors")).items()}
    save_file(weights, str(dst / "adapter_model.safetensors"))
    row = tomllib.loads((out / "preset.toml").read_text())
    (_, spec), = row.items()
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = spec["model"]  # the base the adapter was trained on, not a local path
    (dst / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    c, q, t = rec["collection"], rec["queries"], rec["train"]
    lines = [
        f"# {a.name}", "",
        f"LoRA adapter for `{rec['config']['train']['preset']}`, made by `rerankkit adapt` ({rec['mode']}, "
        f"objective {rec['objective']}, loss {rec['config']['train']['pointwise_loss']}, seed {rec['seed']}).", "",
        f"- collection: {'; '.join(c['sources'])} ({c['documents']:,} documents, fingerprint {c['fingerprint']})",
        f"- sampled documents: {rec.get('sampling', {}).get('documents', 'from a queries file')}; generated "
        f"queries trained on: {q['usable']} of {q['generated']}",
        f"- generator: {rec.get('generation', {}).get('model', '-')}; teacher: "
        f"{(rec.get('teacher') or {}).get('preset') or (rec.get('teacher') or {}).get('run') or 'none (DUQGen labels)'}",
        f"- evaluation queries used: none ({rec['eval']['split']} queries of {', '.join(rec['eval']['datasets'])} "
        f"refused by id and text); training documents judged for them: {rec['eval_overlap']['judged_for_eval_queries']}",
        f"- training: {t['steps']} steps over {t['train_queries']} queries, {t['wall_s']} s on a 2-core CPU",
        f"- evidence for shipping it: {a.evidence}",
        "", "The exact configuration is in `adapt.json` next to this file.", "",
    ]
    (dst / "TRAINED_ON.md").write_text("\n".join(lines))
    shutil.copy(out / "adapt.json", dst / "adapt.json")
    presets = REPO / "rerankkit" / "presets" / "rerankers" / "adapted.toml"
    table = tomllib.loads(presets.read_text()) if presets.exists() else {}
    spec["backend_options"]["adapter"] = f"packaged:{a.name}"
    base = spec["description"].split(" LoRA ")[0].rstrip(". ")
    spec["description"] = f"{base}; with the packaged LoRA adapter {a.name} (rerankkit/adapters/{a.name}/TRAINED_ON.md)."
    table[a.name] = spec
    header = "# Rerankers with adapters shipped in rerankkit/adapters/ (each folder's TRAINED_ON.md says what it saw).\n\n"
    presets.write_text(header + tomli_w.dumps(table))
    size = sum(p.stat().st_size for p in dst.iterdir())
    print(f"{dst}: {size / 1e6:.1f} MB; preset {a.name} in {presets}")


if __name__ == "__main__":
    main()
