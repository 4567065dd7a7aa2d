"""Adapters for RAG frameworks, each behind its own extra and imported only when used.

- :mod:`rerankkit.integrations.langchain`: ``RerankkitCompressor`` (LangChain document compressor;
  extra ``langchain``).
- :mod:`rerankkit.integrations.llamaindex`: ``RerankkitPostprocessor`` (LlamaIndex node
  postprocessor; extra ``llamaindex``).
"""
