"""Robustness studies with the real packaged models on real DL19 data (2 queries x 5 candidates)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from rerankkit import load_dataset  # noqa: E402
from rerankkit.robustness import Study, StudySettings, summarize  # noqa: E402

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def dl19(data_root):
    ds = load_dataset("trec-dl-2019/passage")
    return ds, ds.candidates("bm25").head(2)


def _summary(study, records):
    return summarize(study.describe(), records, {o: study.shown(o) for o in study.orders})


def test_cosine_minilm_is_format_free_and_order_free(dl19, tmp_path):
    """The control: the bi-encoder embeds the bare query and the documents, so no format and no shuffle can
    change a score (its template's listwise parts are unused in query mode)."""
    ds, run = dl19
    study = Study("cosine-minilm", run, ds, tmp_path, StudySettings(formats=3, orders=2, depth=5))
    assert len({f.key() for f in study.formats}) == 3
    records = study.run(cache=tmp_path / "cache.sqlite")
    s = _summary(study, records)
    assert s["formats"]["spread"]["spread"] == 0.0
    assert s["orders"][0]["tau_min"] == 1.0 and s["orders"][0]["identical_share"] == 1.0
    assert sum(r["model_calls"] for r in records) == study.estimate().model_calls == 2 + 2 * 5


def test_pointwise_smollm2_formats_change_prompts_not_the_pipeline(dl19, tmp_path):
    ds, run = dl19
    study = Study("pointwise-smollm2-135m", run, ds, tmp_path, StudySettings(formats=2, orders=1, depth=5))
    records = study.run(cache=tmp_path / "cache.sqlite")
    s = _summary(study, records)
    assert [r["model_calls"] for r in records] == [10, 10, 0]  # the shuffle is answered from the cache
    assert s["orders"][0]["tau_min"] == 1.0  # one score per document: the order cannot matter
    assert 0.0 < s["formats"]["formats"][1]["mean"] <= 1.0
