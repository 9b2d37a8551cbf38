"""Resolver mode over real HTTP: what is sent, how answers are read, failures, caching, isolation."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from flask_authgear import (
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
    Verifier,
)
from flask_authgear.core import RequestData
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import bearer_request
from tests.support.clock import clocked, wall_clock
from tests.support.recorder import Received, ScriptedResolver, valid
from tests.support.threads import together

MakeVerifier = Callable[..., Verifier]
pytestmark = pytest.mark.usefixtures("healed_server")


# -- what a valid answer gives ----------------------------------------------------------------------------


def test_bearer_session_gives_the_resolver_user(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session(
        "alice", roles=["admin", "editor"], amr=["pwd", "otp"], is_verified=True, authenticated_at=1_700_000_000
    )
    user = make_verifier().authenticate(bearer_request(session.token))
    assert user.id == "alice"
    assert user.roles == {"admin", "editor"}
    assert user.amr == ("pwd", "otp")
    assert user.is_verified and not user.is_anonymous and user.can_reauthenticate
    assert user.authenticated_at == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    assert user.source == "resolver"
    assert dict(user.claims) == {}


def test_cookie_session_gives_the_same_user(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session("bob", roles=["reader"])
    user = make_verifier().authenticate(RequestData(cookie=f"theme=dark; {session.cookie}"))
    assert (user.id, user.roles, user.source) == ("bob", {"reader"}, "resolver")


def test_jwt_issued_by_authgear_is_accepted_by_the_resolver(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    token = server.issue_token("carol", roles=["ops"])
    user = make_verifier().authenticate(bearer_request(token))
    assert (user.id, user.roles, user.source) == ("carol", {"ops"}, "resolver")
    assert server.hits("resolver") == 1


# -- refusals without a resolver call --------------------------------------------------------------------


def test_no_credentials_is_401_without_asking_the_resolver(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    for request in (RequestData(), RequestData(authorization="", cookie="")):
        with pytest.raises(MissingCredentialsError):
            verifier.authenticate(request)
    assert server.hits("resolver") == 0


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer tok\u00e9n", "Token abc", "Bearer " + "a" * 9000],
    ids=["basic", "bare-bearer", "two-words", "non-ascii", "other-scheme", "oversized"],
)
def test_malformed_authorization_is_400_without_asking_the_resolver(
    server: AuthgearTestServer, make_verifier: MakeVerifier, authorization: str
) -> None:
    with pytest.raises(InvalidRequestError):
        make_verifier().authenticate(RequestData(authorization=authorization, cookie="session=x"))
    assert server.hits("resolver") == 0


@pytest.mark.parametrize(
    "cookie",
    ["a=b\r\nX-Evil: 1", "a=\x00", "a=\x7f", "s=\u20ac", "s=" + "x" * 20000],
    ids=["crlf", "nul", "del", "beyond-latin-1", "oversized"],
)
def test_a_cookie_that_cannot_be_forwarded_is_400(
    server: AuthgearTestServer, make_verifier: MakeVerifier, cookie: str
) -> None:
    with pytest.raises(InvalidRequestError):
        make_verifier().authenticate(RequestData(cookie=cookie))
    assert server.hits("resolver") == 0


# -- negative answers -------------------------------------------------------------------------------------


def test_cookies_with_non_ascii_bytes_are_forwarded_unchanged(make_verifier: MakeVerifier) -> None:
    cookie = "pref=caf\u00c3\u00a9; session=abc"  # the UTF-8 bytes of an accented letter, as WSGI hands them over
    with ScriptedResolver(script=lambda request: valid("v1")) as resolver:
        assert make_verifier(resolver_url=resolver.url).authenticate(RequestData(cookie=cookie)).id == "v1"
        assert resolver.received[0].headers["cookie"] == cookie


def test_unknown_bearer_token_is_401(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        make_verifier().authenticate(bearer_request("not-a-session"))
    assert caught.value.status_code == 401


def test_ended_cookie_session_is_401(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session("dora")
    server.revoke(session)
    with pytest.raises(InvalidTokenError) as caught:
        make_verifier().authenticate(RequestData(cookie=session.cookie))
    assert "session" in caught.value.description


def test_negative_answers_are_cached_for_the_negative_ttl_only(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(resolver_negative_ttl=5)
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            verifier.authenticate(bearer_request("unknown-token"))
    assert server.hits("resolver") == 1
    uncached = make_verifier(resolver_negative_ttl=0)
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            uncached.authenticate(bearer_request("unknown-token"))
    assert server.hits("resolver") == 4


def test_a_session_created_after_a_negative_answer_is_not_hidden_by_it(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request("unknown-token"))
    session = server.create_session("erin")
    assert verifier.authenticate(bearer_request(session.token)).id == "erin"


# -- what is sent -----------------------------------------------------------------------------------------


def test_only_the_credentials_and_the_authgear_host_are_sent(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    with ScriptedResolver(script=lambda r: valid("u1")) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        request = RequestData(
            method="POST",
            authorization="bearer  opaque-token",
            cookie="session=abc; other=1",
            remote_addr="203.0.113.9",
            origin="https://evil.example",
            sec_fetch_site="same-origin",
            host="app.example.com",
            proxy_headers={"x-authgear-user-id": "forged"},
        )
        assert verifier.authenticate(request).id == "u1"
        assert verifier.authenticate(request._replace(authorization=None)).id == "u1"
        with_bearer, with_cookie = resolver.received
    for received in (with_bearer, with_cookie):
        assert received.method == "GET"
        assert received.path == "/_resolver/resolve"
        assert received.body == b""
        assert received.headers["host"] == server.host_header  # the Authgear host, not the resolver URL's
        allowed = {"host", "authorization", "cookie", "user-agent", "accept", "accept-encoding", "connection"}
        assert set(received.headers) <= allowed
        assert not any(name.startswith(("x-forwarded", "x-authgear", "origin")) for name in received.headers)
    # A bearer token is judged alone: Authgear would fall back to the cookies when it is invalid.
    assert with_bearer.headers["authorization"] == "Bearer opaque-token"
    assert "cookie" not in with_bearer.headers
    assert with_cookie.headers["cookie"] == "session=abc; other=1"
    assert "authorization" not in with_cookie.headers


def test_a_set_cookie_from_the_resolver_never_reaches_another_request(make_verifier: MakeVerifier) -> None:
    def script(request: Received) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = valid("u-" + request.headers.get("authorization", "none")[-1])
        return status, {**headers, "Set-Cookie": "session=planted; Path=/"}, body

    with ScriptedResolver(script=script) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        verifier.authenticate(bearer_request("token-1"))
        verifier.authenticate(bearer_request("token-2"))
        assert [r.headers.get("cookie") for r in resolver.received] == [None, None]


def test_a_bearer_token_is_resolved_alone_whatever_the_cookies(make_verifier: MakeVerifier) -> None:
    # Authgear falls back to the cookies when a bearer token is invalid; the library never lets it, so the answer
    # is the token's alone and one call serves it beside any cookie.
    def by_cookie(request: Received) -> tuple[int, dict[str, str], bytes]:
        return valid("owner-of-" + request.headers.get("cookie", "nothing"))

    with ScriptedResolver(script=by_cookie) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        for _ in range(3):
            for cookie in ("session=a", "session=b", None):
                user = verifier.authenticate(RequestData(authorization="Bearer same-token", cookie=cookie))
                assert user.id == "owner-of-nothing"
        assert resolver.calls == 1


# -- reading answers exactly ------------------------------------------------------------------------------


def _answer(headers: dict[str, str], status: int = 200, body: bytes = b"") -> Callable[[Received], Any]:
    return lambda request: (status, headers, body)


@pytest.mark.parametrize(
    ("headers", "roles", "amr"),
    [
        ({"X-Authgear-User-Roles": "admin,editor"}, {"admin", "editor"}, ("pwd",)),
        ({"X-Authgear-User-Roles": " admin , ,editor,"}, {"admin", "editor"}, ("pwd",)),
        ({"X-Authgear-Session-Amr": "pwd otp"}, set(), ("pwd", "otp")),
        ({"X-Authgear-Session-Amr": "pwd,otp"}, set(), ("pwd", "otp")),
        ({"X-Authgear-Session-Amr": "pwd, mfa  otp"}, set(), ("pwd", "mfa", "otp")),
        ({"X-Authgear-Session-Amr": ""}, set(), ()),
    ],
    ids=["roles", "roles-spaces", "amr-space", "amr-comma", "amr-mixed", "amr-empty"],
)
def test_roles_and_amr_lists(
    make_verifier: MakeVerifier, headers: dict[str, str], roles: set[str], amr: tuple[str, ...]
) -> None:
    answer = valid("u1")[1] | headers
    with ScriptedResolver(script=_answer(answer)) as resolver:
        user = make_verifier(resolver_url=resolver.url).authenticate(bearer_request("t"))
    assert (user.roles, user.amr) == (roles, amr)


def test_missing_optional_headers_mean_false_and_unknown() -> None:
    from flask_authgear.core.headers import parse_answer

    user = parse_answer({"x-authgear-session-valid": "true", "x-authgear-user-id": "u"})
    assert user is not None
    assert (user.is_verified, user.is_anonymous, user.can_reauthenticate) == (False, False, False)
    assert (user.roles, user.amr, user.authenticated_at) == (frozenset(), (), None)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Authgear-Session-Valid": "false"},
        {"X-Authgear-Session-Valid": "false", "X-Authgear-User-Id": "u1"},
    ],
    ids=["no-headers", "false", "false-with-user"],
)
def test_answers_that_do_not_authenticate_are_401(make_verifier: MakeVerifier, headers: dict[str, str]) -> None:
    with ScriptedResolver(script=_answer(headers)) as resolver, pytest.raises(InvalidTokenError):
        make_verifier(resolver_url=resolver.url).authenticate(bearer_request("t"))


MALFORMED = {
    "valid-True": {"X-Authgear-Session-Valid": "True", "X-Authgear-User-Id": "u1"},
    "valid-1": {"X-Authgear-Session-Valid": "1", "X-Authgear-User-Id": "u1"},
    "valid-yes": {"X-Authgear-Session-Valid": "yes", "X-Authgear-User-Id": "u1"},
    "valid-twice": {"X-Authgear-Session-Valid": "true, true", "X-Authgear-User-Id": "u1"},
    "no-user-id": {"X-Authgear-Session-Valid": "true"},
    "empty-user-id": {"X-Authgear-Session-Valid": "true", "X-Authgear-User-Id": ""},
    "user-id-with-space": {"X-Authgear-Session-Valid": "true", "X-Authgear-User-Id": "a b"},
    "user-without-valid": {"X-Authgear-User-Id": "u1"},
    "flag-not-boolean": valid("u1")[1] | {"X-Authgear-User-Verified": "yes"},
    "authenticated-at-text": valid("u1")[1] | {"X-Authgear-Session-Authenticated-At": "yesterday"},
    "authenticated-at-float": valid("u1")[1] | {"X-Authgear-Session-Authenticated-At": "1700000000.5"},
    "authenticated-at-negative": valid("u1")[1] | {"X-Authgear-Session-Authenticated-At": "-1"},
    "authenticated-at-huge": valid("u1")[1] | {"X-Authgear-Session-Authenticated-At": "999999999999"},
}


@pytest.mark.parametrize("headers", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_answers_are_503_and_never_cached(make_verifier: MakeVerifier, headers: dict[str, str]) -> None:
    with ScriptedResolver(script=_answer(headers)) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        for _ in range(2):
            with pytest.raises(ProviderUnavailableError):
                verifier.authenticate(bearer_request("t"))
        assert resolver.calls == 2
        assert verifier.health()["resolver"]["failures"] == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [(204, b""), (401, b""), (404, b""), (503, b""), (301, b""), (200, b"{}"), (200, b"<html>ok</html>")],
    ids=["204", "401", "404", "503", "301", "json-body", "html-body"],
)
def test_answers_that_are_not_an_empty_200_are_503(make_verifier: MakeVerifier, status: int, body: bytes) -> None:
    headers = valid("u1")[1] | ({"Location": "http://127.0.0.1:1/"} if status == 301 else {})
    with ScriptedResolver(script=_answer(headers, status, body)) as resolver, pytest.raises(ProviderUnavailableError):
        make_verifier(resolver_url=resolver.url).authenticate(bearer_request("t"))


# -- failures of the resolver: 503, never an old answer ---------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "slow", "redirect", "invalid_answer", "garbage", "html"])
def test_each_resolver_failure_is_503_then_recovers(
    server: AuthgearTestServer, make_verifier: MakeVerifier, mode: str
) -> None:
    session = server.create_session("frank")
    verifier = make_verifier(http_timeout=0.5)
    server.fail("resolver", mode, delay=1.5)
    for request in (bearer_request(session.token), RequestData(cookie=session.cookie)):
        with pytest.raises(ProviderUnavailableError):
            verifier.authenticate(request)
    server.heal()
    assert verifier.authenticate(bearer_request(session.token)).id == "frank"
    assert verifier.authenticate(RequestData(cookie=session.cookie)).id == "frank"


def test_unreachable_resolver_is_503_then_recovers(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session("gina")
    verifier = make_verifier(http_timeout=0.5)
    with server.unreachable(), pytest.raises(ProviderUnavailableError):
        verifier.authenticate(bearer_request(session.token))
    assert verifier.authenticate(bearer_request(session.token)).id == "gina"
    health = verifier.health()["resolver"]
    assert health["failures"] == 1
    assert health["last_error"] is None  # cleared by the answer after the outage


def test_an_expired_entry_is_never_served_when_the_resolver_fails(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    session = server.create_session("hank")
    clock = wall_clock()
    verifier = clocked(make_verifier(resolver_cache_ttl=0.3), clock)
    assert verifier.authenticate(bearer_request(session.token)).id == "hank"
    server.fail("resolver", "500")
    clock.advance(0.31)  # past the TTL (wall-clock ages are floats: no test on the exact instant)
    with pytest.raises(ProviderUnavailableError):
        verifier.authenticate(bearer_request(session.token))


# -- the TTL is the revocation delay ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["revoke", "disable_user"])
def test_revocation_is_visible_after_the_ttl(server: AuthgearTestServer, make_verifier: MakeVerifier, how: str) -> None:
    session = server.create_session("ivan")
    clock = wall_clock()
    verifier = clocked(make_verifier(resolver_cache_ttl=1.5), clock)
    for request in (bearer_request(session.token), RequestData(cookie=session.cookie)):
        assert verifier.authenticate(request).id == "ivan"
    assert server.hits("resolver") == 2
    if how == "revoke":
        server.revoke(session)
    else:
        server.disable_user("ivan")
    # Within the TTL the cached answer stands: this is the documented revocation delay.
    assert verifier.authenticate(bearer_request(session.token)).id == "ivan"
    assert server.hits("resolver") == 2
    clock.advance(1.51)
    for request in (bearer_request(session.token), RequestData(cookie=session.cookie)):
        with pytest.raises(InvalidTokenError):
            verifier.authenticate(request)
    assert server.hits("resolver") == 4


# -- concurrency ------------------------------------------------------------------------------------------


def test_concurrent_identical_misses_make_one_resolver_call(make_verifier: MakeVerifier) -> None:
    with ScriptedResolver(script=lambda r: valid("jane"), delay=0.3) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        threads = 16
        ids = together(threads, lambda _: verifier.authenticate(bearer_request("shared-token")).id)
        assert ids == ["jane"] * threads
        assert resolver.calls == 1
        assert verifier.health()["resolver"]["coalesced"] >= 1


def test_concurrent_misses_for_different_credentials_are_not_merged(make_verifier: MakeVerifier) -> None:
    def script(request: Received) -> tuple[int, dict[str, str], bytes]:
        return valid("user-" + request.headers["authorization"].rsplit("-", 1)[1])

    with ScriptedResolver(script=script, delay=0.2) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)

        def call(i: int) -> tuple[int, str]:
            return i % 4, verifier.authenticate(bearer_request(f"token-{i % 4}")).id

        results = together(12, call)
        assert all(user == f"user-{n}" for n, user in results)
        assert resolver.calls == 4


def test_waiters_of_a_failed_call_get_503_too(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    server.fail("resolver", "slow", delay=0.3)
    verifier = make_verifier(http_timeout=1.0)

    def call(_: int) -> str:
        try:
            return verifier.authenticate(bearer_request("some-token")).id
        except ProviderUnavailableError:
            return "503"

    assert together(6, call) == ["503"] * 6


@pytest.mark.parametrize(
    ("cache", "local_size"),
    [("memory", 10_000), ("sqlite", 10_000), ("sqlite", 0)],
    ids=["memory", "sqlite+local", "sqlite-only"],
)
def test_interleaved_users_never_get_each_others_identity(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path, cache: str, local_size: int
) -> None:
    sessions = [server.create_session(f"user-{i % 10}", roles=[f"role-{i % 10}"]) for i in range(30)]
    invalid = [f"invalid-{i}" for i in range(5)]
    spec = f"sqlite:///{tmp_path / 'resolver.sqlite'}" if cache == "sqlite" else "memory"
    verifier = make_verifier(cache=spec, resolver_local_cache_size=local_size)
    rng = random.Random(7)
    jobs: list[tuple[RequestData, str | None]] = []
    for _ in range(500):
        if rng.random() < 0.1:
            jobs.append((bearer_request(rng.choice(invalid)), None))
            continue
        session = rng.choice(sessions)
        use_cookie = rng.random() < 0.5
        request = RequestData(cookie=session.cookie) if use_cookie else bearer_request(session.token)
        jobs.append((request, session.user_id))

    def run(job: tuple[RequestData, str | None]) -> bool:
        request, expected = job
        try:
            user = verifier.authenticate(request)
        except InvalidTokenError:
            return expected is None
        return user.id == expected and user.roles == {"role-" + user.id.split("-")[1]}

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    assert all(results)
    # 30 sessions x 2 credentials + 5 invalid tokens, each asked once at most.
    assert server.hits("resolver") <= 65


def test_health_counts_hits_misses_calls_and_failures(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    session = server.create_session("kim")
    verifier = make_verifier(cache=f"sqlite:///{tmp_path / 'resolver.sqlite'}", resolver_local_cache_size=0)
    verifier.authenticate(bearer_request(session.token))  # miss, call
    verifier.authenticate(bearer_request(session.token))  # shared hit
    server.fail("resolver", "500")
    with pytest.raises(ProviderUnavailableError):
        verifier.authenticate(bearer_request("other"))  # miss, call, failure
    health = verifier.health()
    assert health["mode"] == "resolver"
    resolver = health["resolver"]
    assert resolver["backend"] == "sqlite"
    assert (resolver["hits"], resolver["shared_hits"], resolver["local_hits"]) == (1, 1, 0)
    assert (resolver["misses"], resolver["resolver_calls"], resolver["failures"]) == (2, 2, 1)
    assert "500" in resolver["last_error"]
    assert "jwks" not in health
