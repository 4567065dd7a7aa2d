"""The PromptReps retriever engine through the Retriever front door (runs once the retrieval layer is merged)."""

from __future__ import annotations

import pytest

pytest.importorskip("rerankkit.retrievers.base", reason="the retrieval layer (branch 'retrieval') is not merged")
pytest.importorskip("torch")
pytest.importorskip("faiss")
pytest.importorskip("scipy")

from rerankkit import ConfigError, Doc, Query  # noqa: E402
from rerankkit.retrievers import Retriever  # noqa: E402

CORPUS = [Doc("cats", "Cats purr when they are content.", "Cats"), Doc("empty", ""), Doc("blank", "   "),
          Doc("dogs", "Dogs bark at strangers.", "Dogs"), Doc("eiffel", "The Eiffel Tower was completed in 1889.")]
QUERIES = [Query("1", "which animal barks"), Query("2", "tower in paris"), Query("3", "")]


@pytest.fixture(scope="module")
def tiny(tiny_causal_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("promptreps-retriever")
    r = Retriever("promptreps-smollm2-135m", model=str(tiny_causal_dir), dtype="fp32", cache_dir=cache)
    info = r.index(CORPUS)
    return r, info, cache


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_every_mode_returns_well_formed_rankings(tiny, mode, tiny_causal_dir):
    r, info, cache = tiny
    again = Retriever("promptreps-smollm2-135m", model=str(tiny_causal_dir), dtype="fp32", cache_dir=cache,
                      mode=mode)
    assert again.index(CORPUS).reused  # mode is a search setting: the same index serves all three
    run = again.search(QUERIES, k=5)
    by_id = {d.docid: d for d in CORPUS}
    for qid in ("1", "2"):
        ranking = run[qid]
        scores = [d.score for d in ranking.docs]
        assert scores == sorted(scores, reverse=True) and len(set(ranking.docids)) == len(ranking.docids)
        assert all(sd.doc == by_id[sd.docid] for sd in ranking.docs)
        if mode == "dense":
            assert len(ranking) == 5  # every document, the empty ones included, has a dense vector
    assert len(run["3"]) == 0


def test_empty_documents_are_indexed_and_the_build_reports_speed(tiny):
    _, info, _ = tiny
    assert info.n_docs == 5
    assert info.build["sparse_fallback_docs"] >= 2 and info.build["docs_per_s"] > 0
    assert info.build["dim"] == 64


def test_bad_settings():
    with pytest.raises(ConfigError, match="mode"):
        Retriever("promptreps-smollm2-135m", mode="colbert")
    with pytest.raises(ConfigError, match="model"):
        Retriever("promptreps-smollm2-135m", model="")


def test_a_changed_template_text_rebuilds_the_index(tiny_causal_dir, tmp_path):
    from pathlib import Path

    import rerankkit.prompts

    packaged = Path(rerankkit.prompts.__file__).parent / "templates" / "promptreps.yaml"
    path = tmp_path / "my-reps.yaml"
    path.write_text(packaged.read_text())
    kw = dict(model=str(tiny_causal_dir), dtype="fp32", cache_dir=tmp_path / "cache", template=str(path))
    first = Retriever("promptreps-smollm2-135m", **kw).index(CORPUS[:2])
    assert Retriever("promptreps-smollm2-135m", **kw).index(CORPUS[:2]).reused
    path.write_text(packaged.read_text().replace("one word", "one single word"))
    changed = Retriever("promptreps-smollm2-135m", **kw).index(CORPUS[:2])
    assert not changed.reused and changed.path != first.path  # same name, new wording: a new index
