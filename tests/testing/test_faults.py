"""Fault injection: the local Authgear server fails in every way a network fails, and Redis goes away.

The JWKS and discovery endpoints answer 500, HTML, ``{}``, ``{"keys": "x"}``, garbage, an oversized document,
a slow or dripping body, a redirect to another host, or nothing at all. The verifier keeps answering: the last
good keys serve while they are young enough (``jwks_max_stale``); after that, or with no keys ever fetched,
every request gets 503; when the server heals, tokens verify again. The resolver fails the same ways, seen
through the Flask extension and the WSGI middleware: 503 for what is not cached, cached answers and local JWTs
keep working. Redis stops and restarts under load without a wrong answer. No call outlives its deadline: each
runs in a thread joined with a bound, so a hang fails the test instead of stalling the suite.

The JWKS cache gets a hand-driven clock, so "an hour later" takes no time; every byte still goes over HTTP.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_authgear.config import Settings
from flask_authgear.core.jwks import _FAILURE_BACKOFF, JWKSCache
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.core.refusals import TokenError
from flask_authgear.core.verifier import Verifier
from flask_authgear.errors import InvalidTokenError, ProviderUnavailableError
from flask_authgear.testing.server import AuthgearTestServer
from flask_authgear.user import AuthgearUser
from flask_authgear.wsgi import AuthgearMiddleware
from tests.support.apps import me_app, whoami
from tests.support.auth import bearer, bearer_request
from tests.support.clock import Clock
from tests.support.redis_server import IGNORE_SETEX_DEPRECATION

T = TypeVar("T")

HTTP_TIMEOUT = 0.5
#: Bound for joining a call: the deadline plus generous room for a loaded CI machine. A hang exceeds it.
JOIN_BOUND = 10.0
#: Every way the JWKS (or discovery) endpoint can break; "slow" and "drip" outlast the deadline.
BROKEN = ("500", "html", "empty", "bad_keys", "garbage", "oversized", "slow", "drip", "redirect")


# One server for the module (starting one costs a poll interval), healed and with fresh counters for each test.
pytestmark = pytest.mark.usefixtures("healed_server")


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
    return bounded(lambda: verifier.authenticate(bearer_request(token)))


def break_endpoint(server: AuthgearTestServer, target: str, mode: str, elsewhere: AuthgearTestServer) -> None:
    """Make ``target`` fail; a redirect points at the same document on the other host, where a hit is counted."""
    path = "/oauth2/jwks" if target == "jwks" else "/.well-known/openid-configuration"
    server.fail(target, mode, delay=HTTP_TIMEOUT * 3, location=elsewhere.endpoint + path)


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
    clock.advance(_FAILURE_BACKOFF)
    assert authenticate(verifier, token).id == "alice"
    assert verifier.health()["jwks"]["ready"] is True


def test_recovery_after_an_outage_with_no_keys(server: AuthgearTestServer) -> None:
    clock = Clock()
    verifier = make_verifier(server, clock)
    token = server.issue_token("alice")
    with server.unreachable(), pytest.raises(ProviderUnavailableError):
        authenticate(verifier, token)
    clock.advance(_FAILURE_BACKOFF)
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
    clock.advance(_FAILURE_BACKOFF)
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


def test_rotation_is_picked_up_on_an_unknown_kid(server: AuthgearTestServer) -> None:
    clock = Clock()
    verifier = make_verifier(server, clock, jwks_refetch_cooldown=30)
    assert authenticate(verifier, server.issue_token("alice")).id == "alice"
    new_key = server.rotate_keys(keep_old=False)
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
    return me_app(server, "faults", http_timeout=HTTP_TIMEOUT)


@pytest.mark.parametrize("mode", ["500", "html", "bad_keys", "drip", "redirect"])
def test_flask_answers_503_then_recovers(server: AuthgearTestServer, elsewhere: AuthgearTestServer, mode: str) -> None:
    app = flask_app(server)
    clock = Clock()
    with app.app_context():
        verifier: Verifier = app.extensions["authgear"].verifier
    verifier.jwks = JWKSCache(verifier.settings, clock=clock)  # the app's own verifier, on the hand-driven clock
    verifier.jwt = JWTVerifier(verifier.settings, verifier.jwks)
    client = app.test_client()
    token = server.issue_token("alice")
    break_endpoint(server, "jwks", mode, elsewhere)
    response = bounded(lambda: client.get("/me", headers=bearer(token)))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert token not in response.get_data(as_text=True)

    server.heal()
    clock.advance(_FAILURE_BACKOFF)  # the retry delay after a failed fetch
    response = bounded(lambda: client.get("/me", headers=bearer(token)))
    assert response.status_code == 200
    assert response.get_json() == {"sub": "alice"}


# -- the resolver failing, seen through both adapters -----------------------------------------------------------

RESOLVER_BROKEN = ("500", "html", "garbage", "slow", "drip", "redirect", "invalid_answer", "unreachable")


def resolver_app(server: AuthgearTestServer, adapter: str) -> Any:
    """The Flask extension in resolver mode, or the WSGI middleware in auto mode (JWTs stay local there)."""
    if adapter == "flask":
        return me_app(server, "resolver-faults", mode="resolver", http_timeout=HTTP_TIMEOUT)
    return AuthgearMiddleware(whoami, protect=["/"], **server.settings(mode="auto", http_timeout=HTTP_TIMEOUT))


def get(app: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    environ = EnvironBuilder(path="/me", headers=headers).get_environ()
    body_iter, status, response_headers = bounded(lambda: run_wsgi_app(app, environ, buffered=True))
    return int(status.split()[0]), dict(response_headers), b"".join(body_iter)


@pytest.mark.parametrize("adapter", ["flask", "wsgi-auto"])
@pytest.mark.parametrize("mode", RESOLVER_BROKEN)
def test_resolver_failures_are_503_through_the_adapters(
    server: AuthgearTestServer, elsewhere: AuthgearTestServer, adapter: str, mode: str
) -> None:
    app = resolver_app(server, adapter)
    session = server.create_session("rosa")
    jwt_user = server.issue_token("jules")
    warm = server.create_session("wanda")
    assert get(app, bearer(warm.token))[0] == 200  # cached before the outage

    def during_outage() -> None:
        for headers in (bearer(session.token), {"Cookie": session.cookie}):
            status, response_headers, body = get(app, headers)
            assert status == 503
            assert response_headers["Retry-After"]
            assert json.loads(body)["error"] == "temporarily_unavailable"
            assert session.token not in body.decode() and session.cookie_value not in body.decode()
        # A cached answer keeps serving within its TTL; in auto mode a JWT never needed the resolver.
        status, _, body = get(app, bearer(warm.token))
        assert (status, json.loads(body)["sub"]) == (200, "wanda")
        if adapter == "wsgi-auto":
            status, _, body = get(app, bearer(jwt_user))
            assert (status, json.loads(body)["sub"]) == (200, "jules")

    if mode == "unreachable":
        # Warm the JWKS first: the whole server (JWKS included) goes away.
        if adapter == "wsgi-auto":
            assert get(app, bearer(jwt_user))[0] == 200
        with server.unreachable():
            during_outage()
    else:
        server.fail("resolver", mode, delay=HTTP_TIMEOUT * 3, location=f"{elsewhere.endpoint}/_resolver/resolve")
        during_outage()
        assert elsewhere.hits("resolver") == 0  # a redirect is never followed
        server.heal()
    status, _, body = get(app, bearer(session.token))
    assert (status, json.loads(body)["sub"]) == (200, "rosa")
    status, _, body = get(app, {"Cookie": session.cookie})
    assert (status, json.loads(body)["sub"]) == (200, "rosa")


# -- Redis going away in the middle of a run, and coming back -------------------------------------------------

REDIS_SECRET = "faults-redis-secret-0123456789abcdef"


@pytest.mark.slow
@IGNORE_SETEX_DEPRECATION
def test_redis_going_away_mid_run(server: AuthgearTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads keep authenticating while Redis stops and restarts: right users throughout, then Redis again."""
    import redis

    from tests.support import redis_server as redis_support

    owned = redis_support.new_redis()
    verifier = Verifier(
        Settings(
            **server.settings(
                mode="resolver",
                cache=owned.url,
                cache_secret=REDIS_SECRET,
                resolver_local_cache_size=0,  # every request goes through Redis (or around it)
                http_timeout=1.0,
            )
        )
    )
    sessions = [server.create_session(f"redis-user-{i}") for i in range(12)]
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            session = rng.choice(sessions)
            if rng.random() < 0.2:
                try:
                    verifier.authenticate(bearer_request(f"unknown-{rng.random()}"))
                    verdict = "accepted-unknown"
                except InvalidTokenError:
                    verdict = "refused-unknown"
                except Exception as exc:
                    verdict = f"error-{type(exc).__name__}"
            else:
                try:
                    user = verifier.authenticate(bearer_request(session.token))
                    verdict = "right" if user.id == session.user_id else "WRONG"
                except Exception as exc:
                    verdict = f"error-{type(exc).__name__}"
            with lock:
                outcomes[verdict] += 1

    def settle(minimum: int) -> None:
        """Let the workers make at least ``minimum`` more requests (bounded by a generous guard)."""
        start = sum(outcomes.values())
        for _ in range(4000):
            if sum(outcomes.values()) - start >= minimum:
                return
            stop.wait(0.005)
        raise AssertionError("the workers stopped making progress")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(6)]
    connection = redis.Redis.from_url(owned.url)
    try:
        for thread in threads:
            thread.start()
        settle(200)
        assert connection.dbsize() > 0  # answers were cached in Redis
        port = owned.port
        owned.stop()  # Redis goes away mid-run
        settle(200)
        monkeypatch.setattr(redis_support, "free_port", lambda: port)
        owned.start()  # and comes back on the same address, empty
        assert owned.port == port
        for _ in range(3000):  # after the backend's retry delay, answers are cached in Redis again
            if connection.dbsize() > 0:
                break
            settle(20)
        assert connection.dbsize() > 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(JOIN_BOUND)
        connection.close()
        verifier.close()
        owned.close()
    assert not any(t.is_alive() for t in threads)
    assert outcomes["WRONG"] == 0 and outcomes["accepted-unknown"] == 0
    assert set(outcomes) <= {"right", "refused-unknown"}, outcomes
    assert verifier.health()["resolver"]["backend_errors"] >= 1
