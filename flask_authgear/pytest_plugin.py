"""pytest plugin, registered through the ``pytest11`` entry point: installing flask-authgear gives these fixtures.

* ``authgear_server``: a fresh local Authgear-compatible server for one test (new keys, no sessions).
* ``authgear_shared_server``: one server for the whole test session, for suites that build their app once;
  its sessions, failures and counters are reset after each test that uses it, its keys are kept.
* ``authgear_token``: a factory, ``authgear_token("alice", roles=["admin"])``, minting tokens from the server
  the test uses (``authgear_server`` or ``authgear_shared_server``, requested by the test or its fixtures).

An app configured with a fixture's ``flask_config()`` finds that server from ``AuthgearClient``: the fixtures
record the servers they hold, by endpoint, for as long as they hold them.

pytest loads this module in every run of every project that has flask-authgear installed, so it lives outside
:mod:`flask_authgear.testing` and imports the server (RSA keys, an HTTP server, requests) only when a test asks
for one of its fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from .testing.server import AuthgearTestServer

__all__ = ["TokenFactory", "authgear_server", "authgear_shared_server", "authgear_token", "fixture_server"]

_SERVER_FIXTURES = ("authgear_server", "authgear_shared_server")
#: The servers the fixtures below hold right now, by endpoint (filled and emptied only by them).
_held: dict[str, AuthgearTestServer] = {}


class TokenFactory(Protocol):
    """``authgear_token(sub="user-1", **issue_token_keywords) -> str``."""

    def __call__(self, sub: str = "user-1", **claims: Any) -> str: ...


def fixture_server(endpoint: str) -> AuthgearTestServer | None:
    """The server a fixture holds at ``endpoint`` (how ``AuthgearClient`` finds it for a configured app)."""
    return _held.get(endpoint.rstrip("/").lower())


def _held_server() -> Iterator[AuthgearTestServer]:
    """A running server, held (findable by its endpoint) while the fixture keeps it."""
    from .testing.server import AuthgearTestServer

    with AuthgearTestServer() as server:
        _held[server.endpoint] = server
        try:
            yield server
        finally:
            _held.pop(server.endpoint, None)


@pytest.fixture
def authgear_server() -> Iterator[AuthgearTestServer]:
    """A running local Authgear-compatible server on 127.0.0.1, stopped after the test."""
    yield from _held_server()


@pytest.fixture(scope="session")
def _authgear_session_server() -> Iterator[AuthgearTestServer]:
    yield from _held_server()


@pytest.fixture
def authgear_shared_server(_authgear_session_server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """One server (one endpoint, one key set) for the whole session; reset after each test."""
    yield _authgear_session_server
    _authgear_session_server.reset()


@pytest.fixture
def authgear_token(request: pytest.FixtureRequest) -> TokenFactory:
    """Mint Authgear access tokens from the test's server: ``authgear_token("alice", roles=["admin"])``.

    The server is ``authgear_server`` or ``authgear_shared_server``, whichever the test (or one of its
    fixtures) requests; a token from any other server would not verify against the app under test.
    """
    used = [name for name in _SERVER_FIXTURES if name in request.fixturenames]
    if len(used) != 1:
        found = "both" if used else "neither"
        pytest.fail(
            f"authgear_token mints from the server the test uses, and the test requests {found} of "
            "authgear_server and authgear_shared_server: request exactly one of them (in the test or in the "
            "fixture that builds the app)",
            pytrace=False,
        )
    server: AuthgearTestServer = request.getfixturevalue(used[0])
    return server.issue_token
