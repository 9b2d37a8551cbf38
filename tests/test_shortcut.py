"""The adapters' shortcut for repeated credentials (``Verifier.authenticate_environ``) answers exactly as the full
path (``Verifier.authenticate``) does.

The shortcut answers a request from a cache only when that cache holds a proven identity for exactly the same
credential text, and a hit obeys the full path's rules (expiry, signing key still published). These tests put
the same hostile and ordinary requests through both, before and after the caches are warm, in every mode that
has a shortcut, and check that the shortcut is really taken where it should be (so that the comparisons are
not vacuous).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pytest

from flask_authgear import (
    AuthgearError,
    AuthgearUser,
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    Settings,
    Verifier,
)
from flask_authgear.core.request import RequestData
from flask_authgear.testing import AuthgearTestServer
from tests.jwt_helpers import Clock

Outcome = tuple[Any, ...]


def outcome(call: Callable[[], Any]) -> Outcome:
    """What a caller can observe: the user's identity, or the error's class, status and description."""
    try:
        user = call()
    except AuthgearError as exc:
        return ("refused", type(exc).__name__, exc.status_code, exc.description)
    return ("user", user.id, user.source, user.roles, user.is_anonymous)


def environ(authorization: str | None = None, cookie: str | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "api.example.com",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
    }
    if authorization is not None:
        env["HTTP_AUTHORIZATION"] = authorization
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    return env


class Counting:
    """Counts how often the full path runs behind ``authenticate_environ``."""

    def __init__(self, verifier: Verifier) -> None:
        self.calls = 0
        full = verifier.authenticate

        def counted(request: RequestData) -> Any:
            self.calls += 1
            return full(request)

        verifier.authenticate = counted  # type: ignore[method-assign]
        self.full = full


@pytest.fixture
def verifier_defaults() -> dict[str, Any]:
    return {}


@pytest.fixture
def make(make_verifier: Callable[..., Verifier]) -> Callable[..., Verifier]:
    return make_verifier


def requests_for(server: AuthgearTestServer) -> dict[str, dict[str, Any]]:
    """Ordinary and unusual requests around one JWT and one opaque session."""
    token = server.issue_token("alice", roles=["admin"])
    session = server.create_session("bob", roles=["reader"])
    return {
        "jwt": environ(f"Bearer {token}"),
        "jwt, lowercase scheme": environ(f"bearer {token}"),
        "jwt, two spaces": environ(f"Bearer  {token}"),
        "jwt, trailing space": environ(f"Bearer {token} "),
        "jwt, tampered": environ(f"Bearer {token[:-2]}AA"),
        "jwt and a cookie": environ(f"Bearer {token}", "theme=dark"),
        "jwt and a control character in the cookie": environ(f"Bearer {token}", "theme=\x01dark"),
        "jwt and an oversized cookie": environ(f"Bearer {token}", "a=" + "x" * 20_000),
        "jwt and an empty cookie": environ(f"Bearer {token}", ""),
        "jwt with a space inside": environ(f"Bearer {token[:20]} {token[20:]}"),
        "opaque token": environ(session.authorization),
        "opaque token, lowercase scheme": environ(f"bearer {session.token}"),
        "opaque token and a cookie": environ(session.authorization, "theme=dark"),
        "opaque token and another session's cookie": environ(session.authorization, session.cookie),
        "opaque token and a control character in the cookie": environ(session.authorization, "a=\x7f"),
        "session cookie alone": environ(None, session.cookie),
        "unknown opaque token": environ("Bearer not-a-session-token"),
        "no credentials": environ(),
        "Basic scheme": environ("Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
        "empty header": environ(""),
    }


@pytest.mark.parametrize("mode", ["jwt", "resolver", "auto"])
def test_the_shortcut_answers_every_request_as_the_full_path(
    server: AuthgearTestServer, make: Callable[..., Verifier], mode: str
) -> None:
    verifier = make(mode=mode)
    counting = Counting(verifier)
    shortcut_taken = set()
    for name, env in requests_for(server).items():
        full = outcome(lambda env=env: counting.full(RequestData.from_environ(env)))
        before = counting.calls
        first = outcome(lambda env=env: verifier.authenticate_environ(env))
        second = outcome(lambda env=env: verifier.authenticate_environ(env))
        assert first == full, name
        assert second == full, name
        if counting.calls == before:
            shortcut_taken.add(name)
        else:
            assert counting.calls == before + 2, name  # all or nothing: the full call above decided the caches
    assert shortcut_taken == SHORTCUT_TAKEN[mode]


#: The requests a warm cache answers, by mode: only canonical "Bearer <token>" headers of proven credentials.
#: JWT mode never reads cookies; the resolver's answer is for the (token, cookie) pair, so a cookie the full
#: path refuses is never in its cache; auto mode takes the JWT shortcut only without a cookie.
SHORTCUT_TAKEN = {
    "jwt": {
        "jwt",
        "jwt and a cookie",
        "jwt and a control character in the cookie",
        "jwt and an oversized cookie",
        "jwt and an empty cookie",
    },
    "resolver": {
        "jwt",  # an opaque string to resolver mode, which the local Authgear accepts like Authgear does
        "jwt and a cookie",
        "jwt and an empty cookie",
        "opaque token",
        "opaque token and a cookie",
        "opaque token and another session's cookie",
    },
    "auto": {
        "jwt",
        "jwt and an empty cookie",
        "opaque token",
        "opaque token and a cookie",
        "opaque token and another session's cookie",
    },
}


@pytest.mark.parametrize("mode", ["jwt", "auto"])
def test_a_cached_jwt_is_refused_once_expired(
    server: AuthgearTestServer, make: Callable[..., Verifier], mode: str
) -> None:
    verifier = make(mode=mode, leeway=0)
    clock = Clock(time.time())
    verifier.jwt._clock = clock
    env = environ(f"Bearer {server.issue_token('alice', expires_in=60)}")
    assert verifier.authenticate_environ(env).id == "alice"
    assert verifier.authenticate_environ(env).id == "alice"
    clock.advance(61)
    with pytest.raises(InvalidTokenError) as caught:
        verifier.authenticate_environ(env)
    assert caught.value.description == "The access token has expired."


def test_a_cached_jwt_is_refused_once_its_key_is_gone() -> None:
    with AuthgearTestServer() as server:  # its own: the keys change
        verifier = Verifier(Settings(**server.settings()))
        clock = Clock()
        verifier.jwks._clock = clock
        env = environ(f"Bearer {server.issue_token('alice')}")
        assert verifier.authenticate_environ(env).id == "alice"
        server.rotate_keys(keep_old=False)
        assert verifier.authenticate_environ(env).id == "alice"  # the JWKS is fresh: the key is still published
        counting = Counting(verifier)
        clock.advance(verifier.settings.jwks_cache_ttl)  # the set is refreshed and no longer holds the old key
        with pytest.raises(InvalidTokenError):
            verifier.authenticate_environ(env)
        assert counting.calls == 1
        assert verifier.authenticate_environ(environ(f"Bearer {server.issue_token('bob')}")).id == "bob"


def test_a_header_over_the_limit_is_refused_even_for_a_cached_token(
    server: AuthgearTestServer, make: Callable[..., Verifier]
) -> None:
    token = server.issue_token("alice")
    verifier = make(mode="jwt", max_header_bytes=len(token) + 3)
    assert verifier.verify_token(token).id == "alice"  # the token alone fits, and is now cached
    with pytest.raises(InvalidRequestError):
        verifier.authenticate_environ(environ(f"Bearer {token}"))  # "Bearer " + token does not


def test_a_negative_resolver_answer_is_never_taken_as_a_shortcut(
    server: AuthgearTestServer, make: Callable[..., Verifier]
) -> None:
    verifier = make(mode="resolver")
    env = environ("Bearer not-a-session-token")
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            verifier.authenticate_environ(env)
    assert verifier.resolver is not None
    assert verifier.resolver.cached_user("Bearer not-a-session-token", None) is None


def test_resolver_verify_token_holds_tokens_to_the_header_syntax(
    server: AuthgearTestServer, make: Callable[..., Verifier]
) -> None:
    verifier = make(mode="resolver")
    server.reset_hits()
    for bad in ("two words", " leading", "trailing ", "", "t\u00f6ken", "a\r\nX-Authgear-User-Id: admin"):
        with pytest.raises(InvalidTokenError):
            verifier.verify_token(bad)
    assert server.hits("resolver") == 0
    session = server.create_session("bob")
    assert verifier.verify_token(session.token).id == "bob"
    # A token verified directly serves the same header later, through the shortcut.
    counting = Counting(verifier)
    assert verifier.authenticate_environ(environ(session.authorization)).id == "bob"
    assert counting.calls == 0


def test_the_resolver_shortcut_never_crosses_credentials(
    server: AuthgearTestServer, make: Callable[..., Verifier]
) -> None:
    verifier = make(mode="resolver")
    alice, bob = server.create_session("alice"), server.create_session("bob")
    for _ in range(2):
        assert verifier.authenticate_environ(environ(alice.authorization)).id == "alice"
        assert verifier.authenticate_environ(environ(bob.authorization)).id == "bob"
        # Alice's token with Bob's cookie is a pair the resolver decides afresh, never Alice's cached answer.
        assert verifier.authenticate_environ(environ(alice.authorization, bob.cookie)).id == "alice"
    assert verifier.resolver is not None
    stats = verifier.resolver.stats
    assert stats.resolver_calls == 3


def test_a_subclass_with_its_own_rules_sees_every_request(server: AuthgearTestServer) -> None:
    blocked: set[str] = set()

    class PolicyVerifier(Verifier):
        def authenticate(self, request: RequestData) -> AuthgearUser:
            user = super().authenticate(request)
            if user.id in blocked:
                raise InvalidTokenError("This account is blocked.")
            return user

    verifier = PolicyVerifier(Settings(**server.settings()))
    env = environ(f"Bearer {server.issue_token('alice')}")
    assert verifier.authenticate_environ(env).id == "alice"
    assert verifier.authenticate_environ(env).id == "alice"
    blocked.add("alice")
    with pytest.raises(InvalidTokenError) as caught:
        verifier.authenticate_environ(env)
    assert caught.value.description == "This account is blocked."


def test_the_resolver_cache_keeps_digests_not_credentials(
    server: AuthgearTestServer, make: Callable[..., Verifier]
) -> None:
    verifier = make(mode="resolver")
    assert verifier.resolver is not None
    session = server.create_session("bob")
    junk = "Bearer " + "j" * 7_000
    big_cookie = "a=" + "b" * 15_000
    assert verifier.authenticate_environ(environ(session.authorization, big_cookie)).id == "bob"
    with pytest.raises(InvalidTokenError):
        verifier.authenticate_environ(environ(junk, big_cookie))
    keys = list(verifier.resolver.local._entries)
    assert len(keys) == 2
    assert all(type(key) is bytes and len(key) == 32 for key in keys)


@pytest.mark.parametrize("mode", ["resolver", "auto"])
def test_whitespace_around_the_cookie_is_not_part_of_it(
    server: AuthgearTestServer, make: Callable[..., Verifier], mode: str
) -> None:
    verifier = make(mode=mode)
    session = server.create_session("bob")
    for cookie in (f" {session.cookie}", f"{session.cookie}\t", f"  {session.cookie}  "):
        assert verifier.authenticate_environ(environ(None, cookie)).id == "bob", repr(cookie)
    for blank in (" ", "\t", "  \t "):
        with pytest.raises(MissingCredentialsError):
            verifier.authenticate_environ(environ(None, blank))
    assert verifier.resolver is not None and verifier.resolver.stats.failures == 0
