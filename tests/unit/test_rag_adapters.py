"""LangChain compressor and LlamaIndex postprocessor over the oracle backend, inside the frameworks' own pipelines."""

from __future__ import annotations

import pytest

from rerankkit import InputError, Reranker
from rerankkit.backends.fake import OracleBackend

DOCS = ["bm25 ranks documents by term statistics", "cats sleep a lot", "ranking functions score documents",
        "the weather is nice", "bm25 is a bag-of-words retrieval function"]
REL = {DOCS[0]: 3, DOCS[1]: 0, DOCS[2]: 2, DOCS[3]: 1, DOCS[4]: 3.5}
IDEAL = sorted(range(len(DOCS)), key=lambda i: -REL[DOCS[i]])  # [4, 0, 2, 3, 1]


@pytest.fixture
def reranker():
    return Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL))


def test_langchain_contextual_compression_retriever_returns_the_reranked_top_k(reranker):
    pytest.importorskip("langchain_core")
    retrievers = pytest.importorskip("langchain_classic.retrievers")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from rerankkit.integrations.langchain import RerankkitCompressor

    class ListRetriever(BaseRetriever):  # the first stage: returns the candidates in retrieval order
        texts: list[str]

        def _get_relevant_documents(self, query, *, run_manager):
            return [Document(page_content=t, metadata={"pos": i}, id=f"d{i}") for i, t in enumerate(self.texts)]

    retriever = retrievers.ContextualCompressionRetriever(
        base_compressor=RerankkitCompressor(reranker=reranker, top_n=3), base_retriever=ListRetriever(texts=DOCS))
    out = retriever.invoke("what is bm25")
    assert [d.metadata["pos"] for d in out] == IDEAL[:3]
    assert [d.id for d in out] == [f"d{i}" for i in IDEAL[:3]]  # ids and metadata survive
    direct = reranker.rerank("what is bm25", DOCS)
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([sd.score for sd in direct.docs[:3]])


def test_langchain_compressor_async_all_and_empty(reranker):
    pytest.importorskip("langchain_core")
    import asyncio

    from langchain_core.documents import Document

    from rerankkit.integrations.langchain import RerankkitCompressor

    comp = RerankkitCompressor(reranker=reranker, top_n=None, score_key="score")
    docs = [Document(page_content=t) for t in DOCS]
    out = asyncio.run(comp.acompress_documents(docs, "what is bm25"))
    assert [d.page_content for d in out] == [DOCS[i] for i in IDEAL] and "score" in out[0].metadata
    assert comp.compress_documents([], "q") == []
    with pytest.raises(InputError):
        RerankkitCompressor(reranker=reranker, top_n=0).compress_documents(docs, "q")


def test_langchain_compressor_from_a_preset_name():
    pytest.importorskip("langchain_core")
    from rerankkit.integrations.langchain import RerankkitCompressor

    comp = RerankkitCompressor.from_preset("pointwise-yes-no", top_n=2, model="some/model")
    assert isinstance(comp.reranker, Reranker) and comp.reranker.spec.model == "some/model"
    with pytest.raises(Exception, match="unknown reranker preset"):
        RerankkitCompressor(reranker="pointwise-no-such-preset")


def test_llamaindex_postprocessor_reranks_nodes(reranker):
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerankkit.integrations.llamaindex import RerankkitPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0 - i / 10) for i, t in enumerate(DOCS)]
    pp = RerankkitPostprocessor(reranker=reranker, top_n=3)
    out = pp.postprocess_nodes(nodes, query_str="what is bm25")
    assert [n.node.node_id for n in out] == [f"n{i}" for i in IDEAL[:3]]
    direct = reranker.rerank("what is bm25", DOCS)
    assert [n.score for n in out] == pytest.approx([sd.score for sd in direct.docs[:3]])
    out2 = pp.postprocess_nodes(nodes, query_bundle=QueryBundle("what is bm25"))
    assert [n.node.node_id for n in out2] == [n.node.node_id for n in out]
    with pytest.raises(InputError, match="needs the query"):
        pp.postprocess_nodes(nodes)


def test_llamaindex_postprocessor_in_a_query_engine_pipeline(reranker):
    """The postprocessor inside LlamaIndex's retriever query engine (NoText: no answer is written)."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms.mock import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankkit.integrations.llamaindex import RerankkitPostprocessor

    class ListRetriever(BaseRetriever):
        def _retrieve(self, query_bundle):
            return [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)]

    engine = RetrieverQueryEngine(
        retriever=ListRetriever(), node_postprocessors=[RerankkitPostprocessor(reranker=reranker, top_n=2)],
        response_synthesizer=NoText(llm=MockLLM()))
    response = engine.query("what is bm25")
    assert [n.node.node_id for n in response.source_nodes] == [f"n{i}" for i in IDEAL[:2]]


def test_adapters_name_their_extra_when_missing(monkeypatch):
    import sys

    from rerankkit import MissingExtraError

    for mod in ("rerankkit.integrations.langchain", "rerankkit.integrations.llamaindex"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    monkeypatch.setitem(sys.modules, "langchain_core.documents", None)
    with pytest.raises(MissingExtraError, match=r"rerankkit\[langchain\]"):
        import rerankkit.integrations.langchain  # noqa: F401
    monkeypatch.setitem(sys.modules, "llama_index", None)
    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    monkeypatch.setitem(sys.modules, "llama_index.core.postprocessor.types", None)
    with pytest.raises(MissingExtraError, match=r"rerankkit\[llamaindex\]"):
        import rerankkit.integrations.llamaindex  # noqa: F401


class _GatedOracle(OracleBackend):
    """The oracle whose first model call waits until ``release`` is set (so later calls can queue up)."""

    def __init__(self, relevance):
        super().__init__(relevance)
        import threading

        self.release = threading.Event()

    def score(self, requests):
        assert self.release.wait(20), "gate never opened"
        return super().score(requests)


def _concurrently(make_call, n, reranker):
    """Run ``n`` coroutines at once; open the backend's gate once all n are in the batcher (running or queued)."""
    import asyncio
    import time

    async def main():
        tasks = [asyncio.create_task(make_call(i)) for i in range(n)]
        deadline = time.monotonic() + 20
        while (reranker._aio is None or reranker._aio._batcher is None
               or reranker._aio._batcher.queued + reranker._aio._batcher.running < n):
            assert time.monotonic() < deadline, "calls never queued"
            await asyncio.sleep(0.01)
        reranker.backend.release.set()
        return await asyncio.gather(*tasks)

    return asyncio.run(main())


def test_async_adapters_share_model_calls_and_match_the_sync_path():
    """Concurrent async calls go through Reranker.arerank: a local backend's micro-batcher reranks the
    queued ones together (at most 2 model calls for 6 requests), with the rankings of the blocking path."""
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankkit.integrations.langchain import RerankkitCompressor
    from rerankkit.integrations.llamaindex import RerankkitPostprocessor

    reranker = Reranker("pointwise-yes-no", backend_instance=_GatedOracle(REL))
    comp = RerankkitCompressor(reranker=reranker, top_n=3)
    pp = RerankkitPostprocessor(reranker=reranker, top_n=3)
    docs = [Document(page_content=t) for t in DOCS]
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}")) for i, t in enumerate(DOCS)]

    async def call(i):
        if i % 2:
            return [d.page_content for d in await comp.acompress_documents(docs, "what is bm25")]
        return [n.node.get_content() for n in await pp.apostprocess_nodes(nodes, query_str="what is bm25")]

    outs = _concurrently(call, 6, reranker)
    assert all(o == [DOCS[i] for i in IDEAL[:3]] for o in outs)
    assert reranker.backend.usage.batches <= 2  # those taken at once, then those that queued behind them
    sync = [d.page_content for d in comp.compress_documents(docs, "what is bm25")]
    assert sync == outs[1]
    reranker.close()


def test_haystack_ranker_in_a_pipeline_and_async():
    import os

    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    haystack = pytest.importorskip("haystack")
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from rerankkit.integrations.haystack import RerankkitRanker

    reranker = Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL))
    store = InMemoryDocumentStore()
    store.write_documents([haystack.Document(id=f"d{i}", content=t, meta={"pos": i}) for i, t in enumerate(DOCS)])
    pipe = haystack.Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=5))
    pipe.add_component("ranker", RerankkitRanker(reranker=reranker, top_k=3))
    pipe.connect("retriever.documents", "ranker.documents")
    out = pipe.run({"retriever": {"query": "bm25 documents"}, "ranker": {"query": "what is bm25"}})["ranker"]
    direct = reranker.rerank("what is bm25", DOCS)
    assert [d.id for d in out["documents"]] == [f"d{i}" for i in IDEAL[:3]]
    assert [d.score for d in out["documents"]] == pytest.approx([sd.score for sd in direct.docs[:3]])
    assert out["documents"][0].meta == {"pos": IDEAL[0]}  # a copy with the score; content and meta kept

    ranker = RerankkitRanker(reranker=reranker, top_k=None)
    docs = [haystack.Document(content=t) for t in DOCS]
    threshold = direct.docs[2].score
    got = asyncio_run(ranker.run_async(query="what is bm25", documents=docs, score_threshold=threshold))
    assert [d.content for d in got["documents"]] == [DOCS[i] for i in IDEAL[:3]]
    assert ranker.run(query="q", documents=[])["documents"] == []
    with pytest.raises(InputError):
        ranker.run(query="q", documents=docs, top_k=0)

    apipe = getattr(haystack, "AsyncPipeline", haystack.Pipeline)()  # Haystack 3: any Pipeline runs async
    apipe.add_component("ranker", RerankkitRanker(reranker=reranker, top_k=2))
    res = asyncio_run(apipe.run_async({"ranker": {"query": "what is bm25", "documents": docs}}))
    assert [d.content for d in res["ranker"]["documents"]] == [DOCS[i] for i in IDEAL[:2]]


def test_haystack_ranker_serialises_a_preset_name_and_a_spec():
    pytest.importorskip("haystack")
    from rerankkit.integrations.haystack import RerankkitRanker

    by_name = RerankkitRanker(reranker="pointwise-yes-no", top_k=4, overrides={"model": "some/model"})
    data = by_name.to_dict()
    assert data["init_parameters"]["reranker"] == "pointwise-yes-no"
    back = RerankkitRanker.from_dict(data)
    assert back.reranker.spec == by_name.reranker.spec and back.top_k == 4

    ready = Reranker("pointwise-yes-no", backend_instance=OracleBackend(REL), model="m")
    spec_dict = RerankkitRanker(reranker=ready).to_dict()["init_parameters"]["reranker"]
    assert RerankkitRanker(reranker=spec_dict).reranker.spec == ready.spec


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)
