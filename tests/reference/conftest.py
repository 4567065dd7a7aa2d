"""The reference tier: the authors' own code (ielab/llm-rankers, installed by scripts/setup) run side by side
with rerankkit on the same inputs. Fixtures here import it and build the models both sides load."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def llmrankers():
    """llm-rankers' pairwise and setwise modules. Importing setwise seeds the global ``random`` (its module
    does ``random.seed(929)``): the state is put back so other tests are unaffected."""
    state = random.getstate()
    try:
        pw = pytest.importorskip("llmrankers.pairwise", reason="llm-rankers is installed by scripts/setup")
        sw = pytest.importorskip("llmrankers.setwise", reason="llm-rankers is installed by scripts/setup")
        from llmrankers.rankers import SearchResult
    finally:
        random.setstate(state)
    return pw, sw, SearchResult
