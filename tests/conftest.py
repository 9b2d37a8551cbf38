"""Shared fixtures. The ``authgear_server`` fixture comes from the package's own pytest plugin.

The suite mirrors the package: ``core/``, ``flask/``, ``webhooks/``, ``cli/`` and ``testing/`` hold the tests of
those packages, and ``test_<module>.py`` here those of the top-level modules. Three folders are cut across it:
``attacks/`` (the hostile-input catalogue against the core and every adapter), ``stacks/`` (real proxies, Redis,
WSGI servers and load, as deployments build them) and ``project/`` (packaging, examples, demo, benchmarks).
``docs/`` runs the documentation's snippets; ``support/`` holds the helpers and ``vectors/`` the test vectors.

``server`` is one local Authgear per test module, ``redis_server`` one redis-server; a module that needs a
different one defines its own.
Modules pick the clean-up they need with ``pytestmark = pytest.mark.usefixtures(...)``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_authgear import Settings, Verifier
from flask_authgear.config import _SETTING_NAMES, CONFIG_PREFIX
from flask_authgear.testing import AuthgearTestServer
from tests.support.redis_server import RedisServer, start_redis

MakeVerifier = Callable[..., Verifier]


@pytest.fixture(autouse=True)
def no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are read from ``AUTHGEAR_*`` environment variables too: a developer's shell must not change what
    a test builds. Tests about the environment set what they need."""
    for key in list(os.environ):
        if key.startswith(CONFIG_PREFIX) and key[len(CONFIG_PREFIX) :].lower() in _SETTING_NAMES:
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as running:
        yield running


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the module (skips when it is not installed)."""
    yield from start_redis()


@pytest.fixture
def healed_server(server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """The module's server healed with fresh hit counters for the test, and healed again after it."""
    server.heal()
    server.reset_hits()
    yield server
    server.heal()


@pytest.fixture
def reset_server(server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """The module's server, reset after the test (sessions, failures and counters; the keys stay)."""
    yield server
    server.reset()


@pytest.fixture(scope="module")
def verifier(server: AuthgearTestServer) -> Verifier:
    """A verifier with the server's default settings, shared by the module."""
    return Verifier(Settings(**server.settings()))


@pytest.fixture
def verifier_defaults() -> dict[str, Any]:
    """Settings every ``make_verifier`` call starts from; a module overrides this fixture to change them."""
    return {"mode": "resolver"}


@pytest.fixture
def make_verifier(server: AuthgearTestServer, verifier_defaults: dict[str, Any]) -> Iterator[MakeVerifier]:
    """Build verifiers for the server from ``verifier_defaults`` plus overrides; all are closed after the test."""
    made: list[Verifier] = []

    def make(**overrides: Any) -> Verifier:
        values = {**verifier_defaults, **overrides}
        verifier = Verifier(Settings(**server.settings(**values)))
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        verifier.close()


@pytest.fixture
def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test when anything logged an error. The verifier's catch-all, which turns a surprise into a 401,
    logs one: every refusal must come from a deliberate check instead."""
    with caplog.at_level(logging.ERROR):
        yield
    # caplog.records holds the current phase's records; by now that is the teardown, so ask for the test's own.
    unexpected = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not unexpected, unexpected
