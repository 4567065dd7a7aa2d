"""A rerank server speaking the common rerank API (Cohere / Jina / vLLM / TEI), with micro-batching.

    >>> from rerankkit import Reranker
    >>> from rerankkit.server import ServerConfig, ServerThread, create_app
    >>> app = create_app(Reranker("pointwise-smollm2-135m"), ServerConfig(model_name="smollm2"))
    >>> with ServerThread(app) as server: ...  # POST {server.url}/v1/rerank

Needs the ``server`` extra (FastAPI + uvicorn); ``rerankkit serve PRESET`` runs it from the shell.
"""

from __future__ import annotations

from ..batching import BatchResult, MicroBatcher, Overloaded
from .app import create_app
from .config import ServerConfig
from .protocol import RequestError, build_response, parse_request
from .runner import ServerThread, serve

__all__ = ["BatchResult", "MicroBatcher", "Overloaded", "RequestError", "ServerConfig", "ServerThread",
           "build_response", "create_app", "parse_request", "serve"]
