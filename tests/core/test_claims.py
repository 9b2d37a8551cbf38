"""JWT mode: what is accepted, at the exact boundaries of Authgear's claim rules, over real HTTP to the keys."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flask_authgear import (
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
    Settings,
    Verifier,
)
from flask_authgear.core import RequestData
from flask_authgear.core.jwks import JWKSCache
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer_request
from tests.support.clock import Clock
from tests.support.jwt import sign

OTHER_AUDIENCE = "https://api.example.com"


def at(server: AuthgearTestServer, now: float, **overrides: Any) -> JWTVerifier:
    """A verifier whose idea of the current time is ``now`` (the JWKS cache keeps the real clock)."""
    settings = Settings(**server.settings(**overrides))
    return JWTVerifier(settings, JWKSCache(settings), clock=Clock(now))


# -- accepted ----------------------------------------------------------------------------------------------------


def test_authgear_token_is_accepted(server: AuthgearTestServer, verifier: Verifier) -> None:
    user = verifier.authenticate(bearer_request(server.issue_token("u-1", roles=["admin"])))
    assert user.id == "u-1"
    assert user.roles == {"admin"}
    assert user.source == "jwt"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_scheme_is_case_insensitive(server: AuthgearTestServer, verifier: Verifier, scheme: str) -> None:
    token = server.issue_token("u-scheme")
    assert verifier.authenticate(RequestData(authorization=f"{scheme}   {token}")).id == "u-scheme"


def test_no_network_per_request_once_keys_are_cached(server: AuthgearTestServer) -> None:
    verifier = Verifier(Settings(**server.settings(token_cache_size=0)))
    server.reset_hits()
    for i in range(50):
        assert verifier.authenticate(bearer_request(server.issue_token(f"u{i}"))).id == f"u{i}"
    assert (server.hits("discovery"), server.hits("jwks"), server.hits("resolver")) == (1, 1, 0)


@pytest.mark.parametrize(
    "aud",
    ["{endpoint}", ["{endpoint}"], ["https://other.example.com", "{endpoint}"], ["{endpoint}", "{endpoint}"]],
    ids=["string", "list", "any-of-list", "repeated"],
)
def test_audience_forms_are_accepted(server: AuthgearTestServer, verifier: Verifier, aud: Any) -> None:
    value = (
        [a.format(endpoint=server.endpoint) for a in aud]
        if isinstance(aud, list)
        else aud.format(endpoint=server.endpoint)
    )
    assert verifier.verify_token(server.issue_token("u-aud", aud=value)).id == "u-aud"


def test_configured_audiences_are_any_of(server: AuthgearTestServer) -> None:
    # A resource-bound token carries the resource URI as audience instead of the endpoint.
    verifier = Verifier(Settings(**server.settings(audience=[server.endpoint, OTHER_AUDIENCE])))
    assert verifier.verify_token(server.issue_token("u-a", aud=[OTHER_AUDIENCE])).id == "u-a"
    assert verifier.verify_token(server.issue_token("u-b", aud=server.endpoint)).id == "u-b"
    only_resource = Verifier(Settings(**server.settings(audience=OTHER_AUDIENCE)))
    assert only_resource.verify_token(server.issue_token("u-c", aud=[OTHER_AUDIENCE])).id == "u-c"
    with pytest.raises(InvalidTokenError):
        only_resource.verify_token(server.issue_token("u-d"))  # audience = the endpoint, not configured here


def test_custom_domain_issuer_and_audience(server: AuthgearTestServer) -> None:
    domain = "https://auth.example.com"
    verifier = Verifier(
        Settings(
            **server.settings(issuer=domain, audience=domain, jwks_uri=f"{server.endpoint}/oauth2/jwks"),
        )
    )
    assert verifier.verify_token(server.issue_token("u-domain", iss=domain, aud=[domain])).id == "u-domain"
    with pytest.raises(InvalidTokenError):
        verifier.verify_token(server.issue_token("u-default"))  # issued for the default domain


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_case_insensitive(server: AuthgearTestServer, verifier: Verifier, typ: str) -> None:
    assert verifier.verify_token(server.issue_token("u-typ", header={"typ": typ})).id == "u-typ"


@pytest.mark.parametrize("typ", ["JWT", None, "anything"], ids=["JWT", "missing", "other"])
def test_require_typ_off_accepts_any_typ(server: AuthgearTestServer, typ: str | None) -> None:
    verifier = Verifier(Settings(**server.settings(require_typ=False)))
    token = sign(server.claims_for("u-notyp"), server.signing_key, header={"typ": typ})
    assert verifier.verify_token(token).id == "u-notyp"
    strict = Verifier(Settings(**server.settings()))
    with pytest.raises(InvalidTokenError):
        strict.verify_token(token)


def test_extra_claims_from_a_jwt_hook_are_kept(server: AuthgearTestServer, verifier: Verifier) -> None:
    user = verifier.verify_token(server.issue_token("u-hook", tenant="acme", flags={"beta": True}))
    assert user.claims["tenant"] == "acme"
    assert user.claims["flags"] == {"beta": True}


# -- time boundaries ---------------------------------------------------------------------------------------------


def test_expiry_is_on_or_after_exp(server: AuthgearTestServer) -> None:
    exp = int(time.time()) + 600
    token = server.issue_token("u-exp", exp=exp, iat=exp - 1200, auth_time=exp - 1200)
    assert at(server, exp - 1, leeway=0).verify(token).id == "u-exp"
    assert at(server, exp - 0.001, leeway=0).verify(token).id == "u-exp"
    with pytest.raises(InvalidTokenError, match="expired"):
        at(server, exp, leeway=0).verify(token)
    with pytest.raises(InvalidTokenError, match="expired"):
        at(server, exp + 1, leeway=0).verify(token)


def test_leeway_extends_exp(server: AuthgearTestServer) -> None:
    exp = int(time.time()) + 600
    token = server.issue_token("u-leeway", exp=exp, iat=exp - 1200, auth_time=exp - 1200)
    assert at(server, exp + 29, leeway=30).verify(token).id == "u-leeway"
    with pytest.raises(InvalidTokenError):
        at(server, exp + 30, leeway=30).verify(token)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_nbf_and_iat_in_the_future_within_leeway(server: AuthgearTestServer, claim: str) -> None:
    now = time.time()
    token = server.issue_token("u-skew", **{claim: int(now) + 20})
    assert at(server, now, leeway=30).verify(token).id == "u-skew"
    with pytest.raises(InvalidTokenError):
        at(server, now, leeway=10).verify(token)


def test_nbf_in_the_past_is_accepted(server: AuthgearTestServer, verifier: Verifier) -> None:
    assert verifier.verify_token(server.issue_token("u-nbf", nbf=int(time.time()) - 10)).id == "u-nbf"


def test_fractional_times_are_accepted(server: AuthgearTestServer, verifier: Verifier) -> None:
    now = time.time()
    assert verifier.verify_token(server.issue_token("u-f", iat=now - 0.5, exp=now + 60.5)).id == "u-f"


def test_token_cache_never_serves_an_expired_token(server: AuthgearTestServer) -> None:
    exp = int(time.time()) + 600
    token = server.issue_token("u-cached", exp=exp)
    clock = Clock(exp - 10)
    settings = Settings(**server.settings(leeway=0))
    verifier = JWTVerifier(settings, JWKSCache(settings), clock=clock)
    assert verifier.verify(token).id == "u-cached"
    assert verifier.verify(token).id == "u-cached"
    clock.advance(10)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


# -- the request path -------------------------------------------------------------------------------------------


def test_request_without_credentials(verifier: Verifier) -> None:
    with pytest.raises(MissingCredentialsError):
        verifier.authenticate(RequestData())


def test_opaque_token_is_invalid_in_jwt_mode(server: AuthgearTestServer, verifier: Verifier) -> None:
    session = server.create_session("u-opaque")
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request(session.token))
    assert server.hits("resolver") == 0


def test_malformed_header_is_invalid_request(server: AuthgearTestServer, verifier: Verifier) -> None:
    token = server.issue_token()
    with pytest.raises(InvalidRequestError):
        verifier.authenticate(RequestData(authorization=f"Bearer {token} {token}"))


def test_unexpected_failure_inside_verification_is_503(server: AuthgearTestServer) -> None:
    # A defect must still fail closed: the verifier answers 503, never lets an exception become a 500.
    verifier = Verifier(Settings(**server.settings()))

    class Broken(JWTVerifier):
        def claim_refusals(self, claims: Any, now: float) -> Any:
            raise RuntimeError("boom")

    verifier.jwt = Broken(verifier.settings, verifier.jwks)
    with pytest.raises(ProviderUnavailableError) as caught:
        verifier.verify_token(server.issue_token())
    assert "boom" not in caught.value.www_authenticate()
    assert "boom" not in caught.value.body().decode()
