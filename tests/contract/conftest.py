"""Every backend available here, as factories the contract tests parametrize over.

- ``oracle``: always (answers from known relevance);
- ``hf``: a tiny random Llama built in the session (needs torch);
- ``openai``: the packaged SmolLM2 behind a real llama.cpp server on 127.0.0.1 (needs llama-cpp-python).
"""

from __future__ import annotations

import pytest
from contract_cases import DOCS, RELEVANCE


@pytest.fixture(scope="session")
def make_backend(request):
    """``make_backend(name)`` -> a backend instance (cached per session), or skip when unavailable."""
    cache: dict[str, object] = {}

    def make(name: str):
        if name not in cache:
            if name == "oracle":
                from rerankkit.backends.fake import OracleBackend

                cache[name] = OracleBackend({d.text: RELEVANCE[d.docid] for d in DOCS})
            elif name == "hf":
                pytest.importorskip("torch")
                from rerankkit.backends.hf import HFBackend

                tiny = request.getfixturevalue("tiny_causal_dir")
                cache[name] = HFBackend(str(tiny), dtype="fp32", batch_size=8, threads=1)
            elif name == "openai":
                pytest.importorskip("httpx")
                server = request.getfixturevalue("llama_server")
                from rerankkit.backends.openai_compat import OpenAIBackend

                cache[name] = OpenAIBackend("packaged:smollm2-135m-instruct", base_url=server.url,
                                            max_concurrency=4, timeout=60)
            else:
                raise ValueError(name)
        return cache[name]

    return make
