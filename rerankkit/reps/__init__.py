"""PromptReps representations: prompt an LLM for one word, keep its hidden state (dense) and logits (sparse).

    >>> from rerankkit.reps import PromptRepsEncoder, PromptRepsIndex
    >>> enc = PromptRepsEncoder(backend)                  # an hf backend (REPRESENT)
    >>> index = PromptRepsIndex.from_reps(enc.encode(doc_texts))
    >>> hits = index.search(enc.encode(query_texts, "query"), k=100, mode="hybrid")
"""

from __future__ import annotations

from .encoder import PromptRepsEncoder, Reps
from .index import PromptRepsIndex
from .sparse import TermSelector, text_words

__all__ = ["PromptRepsEncoder", "PromptRepsIndex", "Reps", "TermSelector", "text_words"]
