"""Fixtures shared by the unit tests of the HTTP backends."""

from __future__ import annotations

import pytest


@pytest.fixture
def stub():
    """``stub(reply, delay=0.0)``: a started :class:`stub_openai.StubServer`, closed after the test."""
    from stub_openai import StubServer

    servers = []

    def make(reply, delay=0.0):
        s = StubServer(reply, delay)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()
