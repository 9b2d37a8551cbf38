"""Auto mode: JWT-shaped bearer tokens are verified locally, opaque tokens and cookies go to the resolver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_authgear import InvalidRequestError, InvalidTokenError, ProviderUnavailableError, Settings, Verifier
from flask_authgear.core import RequestData
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import bearer_request


@pytest.fixture
def verifier(server: AuthgearTestServer) -> Iterator[Verifier]:
    server.heal()
    server.reset_hits()
    v = Verifier(Settings(**server.settings(mode="auto", http_timeout=1.0)))
    yield v
    v.close()
    server.heal()


def test_a_jwt_is_verified_locally_without_the_resolver(server: AuthgearTestServer, verifier: Verifier) -> None:
    token = server.issue_token("ada", roles=["admin"], amr=["pwd", "mfa"])
    user = verifier.authenticate(bearer_request(token))
    assert (user.id, user.roles, user.amr, user.source) == ("ada", {"admin"}, ("pwd", "mfa"), "jwt")
    assert server.hits("resolver") == 0
    assert server.hits("jwks") == 1


def test_an_opaque_token_and_a_cookie_go_to_the_resolver(server: AuthgearTestServer, verifier: Verifier) -> None:
    session = server.create_session("ada", roles=["admin"], amr=["pwd", "mfa"])
    by_token = verifier.authenticate(bearer_request(session.token))
    by_cookie = verifier.authenticate(RequestData(cookie=session.cookie))
    assert server.hits("resolver") == 2
    assert server.hits("jwks") == 0
    token = server.issue_token("ada", roles=["admin"], amr=["pwd", "mfa"])
    by_jwt = verifier.authenticate(bearer_request(token))
    # One user object either way; only the source says which path proved it.
    for user in (by_token, by_cookie):
        assert (user.id, user.roles, user.amr, user.source) == (by_jwt.id, by_jwt.roles, by_jwt.amr, "resolver")


def test_a_bearer_jwt_wins_over_a_cookie(server: AuthgearTestServer, verifier: Verifier) -> None:
    session = server.create_session("cookie-user")
    token = server.issue_token("jwt-user")
    user = verifier.authenticate(RequestData(authorization=f"Bearer {token}", cookie=session.cookie))
    assert (user.id, user.source) == ("jwt-user", "jwt")
    assert server.hits("resolver") == 0


@pytest.mark.parametrize(
    "cookie", ["a=\x00", "s=\u20ac", "s=" + "x" * 20_000], ids=["control-character", "beyond-latin-1", "oversized"]
)
def test_an_unusable_cookie_is_refused_even_beside_a_valid_jwt(
    server: AuthgearTestServer, verifier: Verifier, cookie: str
) -> None:
    token = server.issue_token("jwt-user")
    with pytest.raises(InvalidRequestError):
        verifier.authenticate(RequestData(authorization=f"Bearer {token}", cookie=cookie))


def test_an_invalid_jwt_is_refused_without_falling_back_to_the_resolver(
    server: AuthgearTestServer, verifier: Verifier
) -> None:
    session = server.create_session("someone")
    expired = server.issue_token("someone", expires_in=-3600)
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(RequestData(authorization=f"Bearer {expired}", cookie=session.cookie))
    forged = server.issue_token("someone")[:-4] + "AAAA"
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request(forged))
    assert server.hits("resolver") == 0


def test_a_jwt_still_verifies_while_the_resolver_is_down(server: AuthgearTestServer, verifier: Verifier) -> None:
    token = server.issue_token("ben")
    session = server.create_session("ben")
    server.fail("resolver", "500")
    assert verifier.authenticate(bearer_request(token)).id == "ben"
    with pytest.raises(ProviderUnavailableError):
        verifier.authenticate(bearer_request(session.token))


def test_verify_token_follows_the_mode(server: AuthgearTestServer, verifier: Verifier) -> None:
    session = server.create_session("cy")
    assert verifier.verify_token(server.issue_token("cy")).source == "jwt"
    assert verifier.verify_token(session.token).source == "resolver"


@pytest.mark.parametrize(
    "token",
    ["a" * 9000, "opaque token", "opaque\r\nX-Injected: 1", "t\u00f6ken"],
    ids=["oversized", "space", "crlf", "non-ascii"],
)
def test_verify_token_never_forwards_what_a_request_could_not_carry(
    server: AuthgearTestServer, verifier: Verifier, token: str
) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_token(token)
    assert caught.value.status_code == 401
    assert server.hits("resolver") == 0


def test_health_shows_both_paths(server: AuthgearTestServer, verifier: Verifier) -> None:
    verifier.authenticate(bearer_request(server.issue_token("dee")))
    health = verifier.health()
    assert health["mode"] == "auto"
    assert "jwks" in health and "resolver" in health
