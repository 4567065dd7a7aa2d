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
