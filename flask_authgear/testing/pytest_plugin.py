"""pytest plugin, registered through the ``pytest11`` entry point: installing flask-authgear gives these fixtures.

* ``authgear_server``: a fresh local Authgear-compatible server for one test (new keys, no sessions).
* ``authgear_shared_server``: one server for the whole test session, for suites that build their app once;
  its sessions, failures and counters are reset after each test that uses it, its keys are kept.
* ``authgear_token``: a factory, ``authgear_token("alice", roles=["admin"])``, minting tokens from
  ``authgear_server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from .server import AuthgearTestServer


class TokenFactory(Protocol):
    """``authgear_token(sub="user-1", **issue_token_keywords) -> str``."""

    def __call__(self, sub: str = "user-1", **claims: Any) -> str: ...


@pytest.fixture
def authgear_server() -> Iterator[AuthgearTestServer]:
    """A running local Authgear-compatible server on 127.0.0.1, stopped after the test."""
    with AuthgearTestServer() as server:
        yield server


@pytest.fixture(scope="session")
def _authgear_session_server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as server:
        yield server


@pytest.fixture
def authgear_shared_server(_authgear_session_server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """One server (one endpoint, one key set) for the whole session; reset after each test."""
    yield _authgear_session_server
    _authgear_session_server.reset()


@pytest.fixture
def authgear_token(authgear_server: AuthgearTestServer) -> TokenFactory:
    """Mint Authgear access tokens from ``authgear_server``: ``authgear_token("alice", roles=["admin"])``."""
    return authgear_server.issue_token
