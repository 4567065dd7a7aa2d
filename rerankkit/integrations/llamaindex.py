"""LlamaIndex: a node postprocessor that reranks retrieved nodes with any rerankkit preset.

    >>> from rerankkit.integrations.llamaindex import RerankkitPostprocessor
    >>> query_engine = index.as_query_engine(similarity_top_k=20,
    ...     node_postprocessors=[RerankkitPostprocessor(reranker="pointwise-smollm2-135m", top_n=3)])

Needs the ``llamaindex`` extra.
"""

from __future__ import annotations

from typing import Any

from .._lazy import require
from ..errors import InputError
from ._common import arerank_texts, as_reranker, rerank_texts

_types = require("llama_index.core.postprocessor.types", "llamaindex", "the LlamaIndex node postprocessor")
_schema = require("llama_index.core.schema", "llamaindex", "the LlamaIndex node postprocessor")
_pydantic = require("pydantic", "llamaindex", "the LlamaIndex node postprocessor")


class RerankkitPostprocessor(_types.BaseNodePostprocessor):
    """Keeps the ``top_n`` nodes (all when None), best first, with the reranker's score as the node score.

    ``reranker`` is a preset name, a :class:`~rerankkit.RerankerSpec` or a :class:`~rerankkit.Reranker`.
    Each node is shown to the model as ``node.get_content(metadata_mode)`` (``EMBED``, as LlamaIndex's
    own rerankers do).
    """

    reranker: Any
    top_n: int | None = 3
    metadata_mode: Any = _schema.MetadataMode.EMBED

    @_pydantic.field_validator("reranker", mode="before")
    @classmethod
    def _build(cls, value: Any) -> Any:
        return as_reranker(value)

    @classmethod
    def from_preset(cls, preset: Any, top_n: int | None = 3, **overrides: Any) -> RerankkitPostprocessor:
        """A postprocessor over ``Reranker(preset, **overrides)``."""
        return cls(reranker=as_reranker(preset, **overrides), top_n=top_n)

    @classmethod
    def class_name(cls) -> str:
        return "RerankkitPostprocessor"

    def _postprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
        texts = self._texts(nodes, query_bundle)
        ranked = rerank_texts(self.reranker, query_bundle.query_str, texts, self.top_n)
        return [_schema.NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]

    async def _apostprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
        """:meth:`_postprocess_nodes` without blocking the event loop (``Reranker.arerank``)."""
        texts = self._texts(nodes, query_bundle)
        ranked = await arerank_texts(self.reranker, query_bundle.query_str, texts, self.top_n)
        return [_schema.NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]

    def _texts(self, nodes: list[Any], query_bundle: Any) -> list[str]:
        if query_bundle is None:
            raise InputError("RerankkitPostprocessor needs the query (pass query_bundle or query_str)")
        return [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]
