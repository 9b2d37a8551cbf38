"""pytest plugin (registered through the ``pytest11`` entry point): the ``authgear_server`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import AuthgearTestServer


@pytest.fixture
def authgear_server() -> Iterator[AuthgearTestServer]:
    """A running local Authgear-compatible server on 127.0.0.1, stopped after the test."""
    with AuthgearTestServer() as server:
        yield server
