"""Adapters shipped in ``rerankkit/adapters/``: each has its preset row, says what it was trained on, is small,
and loads by preset name onto the real packaged SmolLM2 with its weights applied (scores move off the base
model's and equal those of the same adapter given as a folder)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from rerankkit import Reranker

PACKAGE = Path(__file__).resolve().parents[2] / "rerankkit"
ADAPTERS = sorted(p for p in (PACKAGE / "adapters").iterdir() if p.is_dir() and not p.name.startswith("_"))
PRESETS = tomllib.loads((PACKAGE / "presets" / "rerankers" / "adapted.toml").read_text())
QUERY = "what is the daily life of thai people"
DOCS = ["Thai people usually eat rice with every meal and start the day early at the market.",
        "The stock market closed higher on Tuesday after the central bank kept rates unchanged.",
        "Daily life in Thailand centres on family, temple visits and food shared with neighbours."]


def test_every_adapter_folder_has_a_preset_and_says_what_it_saw():
    assert {p.name for p in ADAPTERS} == set(PRESETS)
    for folder in ADAPTERS:
        spec = PRESETS[folder.name]
        assert spec["backend_options"]["adapter"] == f"packaged:{folder.name}"
        assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == spec["model"]
        trained_on = (folder / "TRAINED_ON.md").read_text()
        assert "evaluation queries used: none" in trained_on and "evidence for shipping it:" in trained_on
        assert sum(f.stat().st_size for f in folder.iterdir()) < 10e6  # "a few MB" inside the wheel


@pytest.mark.parametrize("name", [p.name for p in ADAPTERS])
def test_shipped_adapter_loads_by_name_and_changes_the_scores(name):
    base_preset = {"pointwise": "pointwise-smollm2-135m"}[PRESETS[name]["strategy"]]
    tuned = Reranker(name, dtype="fp32").rerank(QUERY, DOCS)
    base = Reranker(base_preset, dtype="fp32").rerank(QUERY, DOCS)
    folder = Reranker(base_preset, dtype="fp32", adapter=str(PACKAGE / "adapters" / name)).rerank(QUERY, DOCS)
    by_id = {d.docid: d.score for d in tuned.docs}
    assert {d.docid: d.score for d in folder.docs} == pytest.approx(by_id, abs=1e-4)
    assert max(abs(by_id[d.docid] - d.score) for d in base.docs) > 1e-2
