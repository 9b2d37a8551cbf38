"""Fault injection in JWT mode: the local Authgear server fails in every way a network fails.

The JWKS and discovery endpoints answer 500, HTML, ``{}``, ``{"keys": "x"}``, garbage, an oversized document, a
slow or dripping body, a redirect to another host, or nothing at all. The verifier keeps answering: the last good
keys serve while they are young enough (``jwks_max_stale``), after that, or with no keys ever fetched, every
request gets 503; when the server heals, tokens verify again. No call outlives its deadline: each runs in a
thread joined with a bound, so a hang fails the test instead of stalling the suite.

The JWKS cache gets a hand-driven clock, so "an hour later" takes no time; every byte still goes over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from flask import Flask, jsonify

from flask_authgear.config import Settings
from flask_authgear.core.jwks import FAILURE_BACKOFF, JWKSCache
from flask_authgear.core.jwt import JWTVerifier, TokenError
from flask_authgear.core.request import RequestData
from flask_authgear.core.verifier import Verifier
from flask_authgear.errors import ProviderUnavailableError
from flask_authgear.flask import Authgear, current_user, require_auth
from flask_authgear.testing.server import AuthgearTestServer
from flask_authgear.user import AuthgearUser

T = TypeVar("T")

HTTP_TIMEOUT = 0.5
#: Bound for joining a call: the deadline plus generous room for a loaded CI machine. A hang exceeds it.
JOIN_BOUND = 10.0
#: Every way the JWKS (or discovery) endpoint can break; "slow" and "drip" outlast the deadline.
BROKEN = ("500", "html", "empty", "bad_keys", "garbage", "oversized", "slow", "drip", "redirect")


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def shared_server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as running:
        yield running


@pytest.fixture
def server(shared_server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """The module's server, healed and with fresh counters for each test (starting one costs a poll interval)."""
    shared_server.heal()
    shared_server.reset_hits()
    yield shared_server
    shared_server.heal()


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[AuthgearTestServer]:
    """Another host, serving a perfectly valid JWKS of keys that are not the project's."""
    with AuthgearTestServer() as running:
        yield running


def make_verifier(server: AuthgearTestServer, clock: Clock, **overrides: Any) -> Verifier:
    values = {"http_timeout": HTTP_TIMEOUT, "jwks_cache_ttl": 300, "jwks_max_stale": 3600, **overrides}
    settings = Settings(**server.settings(**values))
    verifier = Verifier(settings)
    verifier.jwks = JWKSCache(settings, clock=clock)
    verifier.jwt = JWTVerifier(settings, verifier.jwks)
    return verifier


def bounded(call: Callable[[], T]) -> T:
    """Run ``call`` in a thread; fail if it has not returned within ``JOIN_BOUND`` seconds."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(JOIN_BOUND)
    assert not thread.is_alive(), "the call outlived its deadline"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def authenticate(verifier: Verifier, token: str) -> AuthgearUser:
    return bounded(lambda: verifier.authenticate(RequestData(authorization=f"Bearer {token}")))


def break_endpoint(server: AuthgearTestServer, target: str, mode: str, elsewhere: AuthgearTestServer) -> None:
    location = f"{elsewhere.endpoint}/oauth2/jwks" if target == "jwks" else f"{elsewhere.endpoint}/.well-known/x"
    server.fail(target, mode, delay=HTTP_TIMEOUT * 3, location=location)


@pytest.mark.parametrize("target", ["jwks", "discovery"])
@pytest.mark.parametrize("mode", BROKEN)
def test_no_keys_yet_means_503(
    server: AuthgearTestServer, elsewhere: AuthgearTestServer, target: str, mode: str
) -> None:
    verifier = make_verifier(server, Clock())
    break_endpoint(server, target, mode, elsewhere)
    with pytest.raises(ProviderUnavailableError) as caught:
        authenticate(verifier, server.issue_token("alice"))
    assert caught.value.status_code == 503
    # A redirect is never followed: the other host, whose keys would verify its own tokens, is never asked.
    assert elsewhere.hits("jwks") == 0
    assert elsewhere.hits("discovery") == 0
    assert verifier.health()["jwks"]["ready"] is False


def test_unreachable_server_means_503(server: AuthgearTestServer) -> None:
    verifier = make_verifier(server, Clock())
    token = server.issue_token("alice")
    with server.unreachable(), pytest.raises(ProviderUnavailableError):
        authenticate(verifier, token)


@pytest.mark.parametrize("mode", BROKEN)
def test_stale_keys_serve_while_allowed(server: AuthgearTestServer, elsewhere: AuthgearTestServer, mode: str) -> None:
    clock = Clock()
    verifier = make_verifier(server, clock, jwks_cache_ttl=60, jwks_max_stale=600)
    token = server.issue_token("alice")
    assert authenticate(verifier, token).id == "alice"

    break_endpoint(server, "jwks", mode, elsewhere)
    clock.advance(120)  # the keys are stale: a refresh is due and fails
    assert authenticate(verifier, token).id == "alice"
    assert authenticate(verifier, server.issue_token("bob")).id == "bob"
    assert verifier.jwks.stats.fetch_failures >= 1
    assert verifier.jwks.stats.stale_served >= 1

    clock.advance(600)  # now older than jwks_max_stale: fail closed
    with pytest.raises(ProviderUnavailableError):
        authenticate(verifier, server.issue_token("carol"))
    with pytest.raises(ProviderUnavailableError):
        authenticate(verifier, token)  # even a token verified before: the cache must not outlive the keys

    server.heal()
    clock.advance(FAILURE_BACKOFF)
    assert authenticate(verifier, token).id == "alice"
    assert verifier.health()["jwks"]["ready"] is True


def test_recovery_after_an_outage_with_no_keys(server: AuthgearTestServer) -> None:
    clock = Clock()
    verifier = make_verifier(server, clock)
    token = server.issue_token("alice")
    with server.unreachable(), pytest.raises(ProviderUnavailableError):
        authenticate(verifier, token)
    clock.advance(FAILURE_BACKOFF)
    assert authenticate(verifier, token).id == "alice"


def test_failures_back_off_instead_of_hammering(server: AuthgearTestServer) -> None:
    """During an outage a burst of requests costs one fetch per backoff period, not one per request."""
    clock = Clock()
    verifier = make_verifier(server, clock)
    server.fail("jwks", "500")
    token = server.issue_token("alice")
    for _ in range(50):
        with pytest.raises(ProviderUnavailableError):
            authenticate(verifier, token)
    assert server.hits("jwks") == 1
    clock.advance(FAILURE_BACKOFF)
    with pytest.raises(ProviderUnavailableError):
        authenticate(verifier, token)
    assert server.hits("jwks") == 2


def test_unknown_kids_during_an_outage_are_401_and_cheap(server: AuthgearTestServer) -> None:
    """With stale keys serving, a token from a key we never saw is invalid (401), and the flood costs no fetch."""
    clock = Clock()
    verifier = make_verifier(server, clock, jwks_cache_ttl=60)
    assert authenticate(verifier, server.issue_token("alice")).id == "alice"
    server.fail("jwks", "html")
    clock.advance(120)
    new_key = server.rotate_keys()
    hits = server.hits("jwks")
    for _ in range(30):
        with pytest.raises(TokenError):
            authenticate(verifier, server.issue_token("mallory", key=new_key))
    assert server.hits("jwks") - hits <= 1


def test_rotation_is_picked_up_after_healing(server: AuthgearTestServer) -> None:
    clock = Clock()
    verifier = make_verifier(server, clock, jwks_refetch_cooldown=30)
    assert authenticate(verifier, server.issue_token("alice")).id == "alice"
    new_key = server.rotate_keys(keep_old=False)
    clock.advance(31)
    assert authenticate(verifier, server.issue_token("bob", key=new_key)).id == "bob"


def test_oversized_jwks_is_not_read_whole(server: AuthgearTestServer) -> None:
    """A 2 MB JWKS is cut off at the size cap: refused, and the endpoint answered once."""
    verifier = make_verifier(server, Clock())
    server.fail("jwks", "oversized")
    with pytest.raises(ProviderUnavailableError):
        authenticate(verifier, server.issue_token("alice"))
    assert "more than" in (verifier.jwks.stats.last_error or "")


# -- through the Flask extension ------------------------------------------------------------------------------


def flask_app(server: AuthgearTestServer) -> Flask:
    app = Flask("faults")
    app.config.update(server.flask_config(http_timeout=HTTP_TIMEOUT))
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me() -> object:
        return jsonify(sub=current_user.id)

    return app


@pytest.mark.parametrize("mode", ["500", "html", "bad_keys", "drip", "redirect"])
def test_flask_answers_503_then_recovers(server: AuthgearTestServer, elsewhere: AuthgearTestServer, mode: str) -> None:
    app = flask_app(server)
    client = app.test_client()
    token = server.issue_token("alice")
    break_endpoint(server, "jwks", mode, elsewhere)
    response = bounded(lambda: client.get("/me", headers={"Authorization": f"Bearer {token}"}))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert token not in response.get_data(as_text=True)

    server.heal()
    # The real clock: the backoff after a failure is FAILURE_BACKOFF seconds, so drive a fresh app instead of
    # waiting; the healed server must serve it at once.
    healed = flask_app(server).test_client()
    response = bounded(lambda: healed.get("/me", headers={"Authorization": f"Bearer {token}"}))
    assert response.status_code == 200
    assert response.get_json() == {"sub": "alice"}
