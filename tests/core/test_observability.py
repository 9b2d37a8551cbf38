"""Logs, counters and health: useful records for operators, and never a credential in them."""

from __future__ import annotations

import contextlib
import hashlib
import logging

import pytest
from flask import Flask, jsonify
from werkzeug.test import Client

from flask_authgear import Authgear, InvalidTokenError, ProviderUnavailableError, Settings, Verifier, require_auth
from flask_authgear.core.jwks import _FAILURE_BACKOFF, JWKSCache
from flask_authgear.core.request import RequestData
from flask_authgear.testing import configure, new_signing_key
from flask_authgear.wsgi import AuthgearMiddleware
from tests.support.auth import bearer, bearer_request
from tests.support.clock import Clock

LOGGER = "flask_authgear"


pytestmark = pytest.mark.usefixtures("reset_server")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# -- records ---------------------------------------------------------------------------------------------------


def test_fetches_and_failures_are_logged_with_their_reason(server, logs):
    verifier = Verifier(Settings(**server.settings()))
    verifier.verify_token(server.issue_token())
    assert f"discovery fetched from {server.endpoint}/.well-known/openid-configuration" in messages(logs)
    assert "JWKS fetched (initial): 1 usable key(s)" in messages(logs)

    cold = Verifier(Settings(**server.settings()))
    with server.failing("jwks", "500"), pytest.raises(ProviderUnavailableError):
        cold.verify_token(server.issue_token())
    failed = [r for r in logs.records if r.levelno == logging.WARNING]
    assert (
        failed[-1].getMessage() == f"JWKS fetch failed (initial): GET {server.endpoint}/oauth2/jwks answered HTTP 500"
    )


def test_a_wrong_issuer_names_both_issuers_and_the_setting_once_per_change_of_state(server, logs):
    # The app reaches the local server as localhost, which calls itself 127.0.0.1: the situation of an app whose
    # endpoint is not the issuer (a custom domain). Every request would answer 503, as in an outage.
    clock = Clock()
    endpoint = server.endpoint.replace("127.0.0.1", "localhost")
    jwks = JWKSCache(Settings(endpoint=endpoint), clock=clock)
    mismatch = (
        f"the discovery document of {endpoint} names the issuer '{server.endpoint}', not the configured "
        f"'{endpoint}': when the project's tokens carry that issuer (a custom domain, or the endpoint by another "
        "name), set AUTHGEAR_ISSUER and AUTHGEAR_AUDIENCE to it"
    )

    def attempt() -> None:
        assert jwks.warm_up() is False
        clock.advance(_FAILURE_BACKOFF)  # the next attempt fetches again

    for _ in range(3):
        attempt()
    assert jwks.health()["last_error"] == mismatch and jwks.health()["fetch_failures"] == 3
    failures = [r for r in logs.records if r.getMessage().startswith("JWKS fetch failed")]
    assert [(r.levelno, r.getMessage()) for r in failures] == [
        (logging.WARNING, f"JWKS fetch failed (initial): {mismatch}"),
        (logging.DEBUG, f"JWKS fetch failed (initial): {mismatch}"),
        (logging.DEBUG, f"JWKS fetch failed (initial): {mismatch}"),
    ]

    logs.clear()
    with server.failing("discovery", "500"):  # another failure is a change of state, and so is the issuer again
        attempt()
    attempt()
    assert [r.getMessage() for r in logs.records if r.levelno == logging.WARNING] == [
        f"JWKS fetch failed (initial): GET {endpoint}/.well-known/openid-configuration answered HTTP 500",
        f"JWKS fetch failed (initial): {mismatch}",
    ]

    fixed = JWKSCache(Settings(endpoint=endpoint, issuer=server.endpoint), clock=clock)
    assert fixed.warm_up() is True  # the setting the message names is the fix


def test_stale_keys_and_refused_refetches_are_logged_and_counted(server, logs):
    clock = Clock()
    jwks = JWKSCache(Settings(**server.settings(jwks_cache_ttl=60, jwks_refetch_cooldown=30)), clock=clock)
    kid = server.signing_key.kid
    assert jwks.get(kid) is not None
    assert jwks.get("unknown-0") is None  # the first unknown kid refetches once
    assert jwks.get("unknown-1") is None  # inside the cooldown: no refetch
    assert "JWKS refetch for an unknown kid refused: cooldown" in messages(logs)
    clock.advance(61)  # the keys are now old
    with server.failing("jwks", "500"):
        assert jwks.get(kid) is not None  # the last good keys keep serving
    assert "serving the last good JWKS while the JWKS endpoint fails" in messages(logs)
    health = jwks.health()
    assert health["fetches"] == 3 and health["fetch_failures"] == 1
    assert health["refetches_refused"] == 1 and health["stale_served"] == 1
    assert health["stale"] is True and health["ready"] is True
    assert health["last_error"] == f"GET {server.endpoint}/oauth2/jwks answered HTTP 500"


def test_key_rotation_is_logged_with_the_published_kids_only(server, logs):
    verifier = Verifier(Settings(**server.settings(jwks_refetch_cooldown=0)))
    old = server.signing_key.kid
    verifier.verify_token(server.issue_token())
    new = server.rotate_keys().kid
    verifier.verify_token(server.issue_token())  # an unknown kid: refetch, the new key arrives
    assert f"JWKS keys changed: added ['{new}']; removed none" in messages(logs)
    server.remove_key(old)
    with pytest.raises(InvalidTokenError):
        verifier.verify_token(server.issue_token(header={"kid": "attacker-kid-5511"}))
    assert f"JWKS keys changed: added none; removed ['{old}']" in messages(logs)
    assert not any("attacker-kid-5511" in message for message in messages(logs))


def test_refused_tokens_are_logged_and_counted_by_reason(server, logs):
    verifier = Verifier(Settings(**server.settings()))
    expired = server.issue_token(expires_in=-600)
    tokens = [
        expired,
        expired,
        server.issue_token(aud=["https://other.example"]),
        server.issue_token(key=new_signing_key()),
    ]
    for token in tokens:
        with pytest.raises(InvalidTokenError):
            verifier.verify_token(token)
    assert verifier.health()["rejections"] == {"expired": 2, "aud": 1, "unknown_kid": 1}
    refused = [r for r in logs.records if r.getMessage().startswith("JWT access token refused")]
    # At INFO, so that a developer sees why a request was refused without turning on DEBUG; the token is named by
    # the start of its SHA-256 only, which tells two tokens apart and cannot be sent back as one.
    assert [r.levelno for r in refused] == [logging.INFO] * 4
    assert [r.getMessage() for r in refused] == [
        f"JWT access token refused: {reason} (token sha256:{hashlib.sha256(token.encode()).hexdigest()[:12]})"
        for reason, token in zip(("expired", "expired", "aud", "unknown_kid"), tokens, strict=True)
    ]


# -- counters and health ---------------------------------------------------------------------------------------


def test_token_cache_counters(server):
    verifier = Verifier(Settings(**server.settings()))
    token = server.issue_token()
    for _ in range(3):
        verifier.verify_token(token)
    cache = verifier.health()["token_cache"]
    assert cache == {"hits": 2, "misses": 1}


def test_health_is_not_ready_until_keys_are_loaded_and_warm_up_loads_them(server):
    verifier = Verifier(Settings(**server.settings()))
    health = verifier.health()
    assert health["mode"] == "jwt" and health["ready"] is False and health["jwks"]["keys"] == 0
    assert server.hits("jwks") == 0  # reading health never calls Authgear
    health = verifier.warm_up()
    assert health["ready"] is True and health["last_error"] is None
    assert health["jwks"]["keys"] == 1 and health["jwks"]["age_seconds"] < 60
    verifier.warm_up()
    assert server.hits("jwks") == 1  # fresh keys are not fetched again


def test_warm_up_during_an_outage_reports_the_error_without_raising(server):
    verifier = Verifier(Settings(**server.settings()))
    with server.unreachable():
        health = verifier.warm_up()
    assert health["ready"] is False
    assert health["last_error"] == f"GET {server.endpoint}/.well-known/openid-configuration failed: connection refused"
    assert health["jwks"]["fetch_failures"] == 1


def test_resolver_mode_health_has_resolver_counters(server):
    verifier = Verifier(Settings(**server.settings(mode="resolver")))
    session = server.create_session("ann")
    for _ in range(2):
        verifier.authenticate(bearer_request(session.token))
    health = verifier.health()
    assert health["ready"] is True and "jwks" not in health
    assert health["resolver"]["resolver_calls"] == 1 and health["resolver"]["hits"] == 1
    verifier.close()


def test_extension_health_for_a_readiness_route(server):
    app = Flask(__name__)
    configure(app, server)
    ext = Authgear(app)

    @app.get("/ready")
    def ready():
        health = ext.verifier.warm_up()
        return jsonify(health), 200 if health["ready"] else 503

    with app.app_context():
        assert ext.verifier.health()["ready"] is False
    client = app.test_client()
    response = client.get("/ready")
    assert response.status_code == 200 and response.get_json()["jwks"]["keys"] == 1


# -- no secret in any record -----------------------------------------------------------------------------------


def test_no_credential_reaches_the_logs(server, logs):
    """Every failure path at DEBUG level, through the core and both adapters: no token, cookie or attacker kid."""
    secrets: list[str] = []

    def remember(token: str) -> str:
        secrets.extend([token, *token.split(".")])
        return token

    attacker_kid = "attacker-chosen-kid-7f3e"
    jwt_settings = Settings(**server.settings(jwks_refetch_cooldown=0))
    verifier = Verifier(jwt_settings)
    tokens = [
        remember(server.issue_token("victim", roles=["admin"])),
        remember(server.issue_token(expires_in=-600)),
        remember(server.issue_token(header={"kid": attacker_kid})),
        remember(server.issue_token(key=new_signing_key())),
    ]
    header, payload, _ = tokens[0].split(".")
    tokens.append(remember(f"{header}.{payload}.{'A' * 342}"))
    for token in tokens:
        with contextlib.suppress(InvalidTokenError):
            verifier.verify_token(token)

    cold = Verifier(jwt_settings)
    for mode in ("500", "garbage", "html"):
        with server.failing("jwks", mode), pytest.raises(ProviderUnavailableError):
            Verifier(jwt_settings).verify_token(tokens[0])
    with server.unreachable(), pytest.raises(ProviderUnavailableError):
        cold.verify_token(tokens[0])

    resolver = Verifier(Settings(**server.settings(mode="resolver", http_timeout=1)))
    session = server.create_session("victim")
    revoked = server.create_session("victim")
    server.revoke(revoked)
    secrets.extend([session.token, session.cookie_value, revoked.token, revoked.cookie_value])
    requests_to_try = [
        bearer_request(session.token),
        RequestData(cookie=session.cookie),
        bearer_request(revoked.token),
        RequestData(cookie=revoked.cookie),
    ]
    for mode in (None, "500", "invalid_answer", "garbage", "redirect"):
        for data in requests_to_try:
            fresh = Verifier(Settings(**server.settings(mode="resolver", http_timeout=1)))
            if mode is None:
                with contextlib.suppress(InvalidTokenError):
                    fresh.authenticate(data)
            else:
                with server.failing("resolver", mode), pytest.raises(ProviderUnavailableError):
                    fresh.authenticate(data)
            fresh.close()
    resolver.close()

    app = Flask(__name__)
    configure(app, server)
    Authgear(app)

    @app.get("/p")
    @require_auth
    def protected():
        return "ok"

    client = app.test_client()
    wsgi = Client(AuthgearMiddleware(lambda e, s: [s("200 OK", []) or b"ok"][0:1], **server.settings(protect=["/"])))
    for token in tokens:
        client.get("/p", headers=bearer(token))
        wsgi.get("/", headers=bearer(token))

    records = [r for r in logs.records if r.name == LOGGER]
    assert records, "the scenario produced no records at all"
    text = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''} {logs.text if r is records[-1] else ''}" for r in records
    )
    assert "JWKS fetch failed" in text and "JWT access token refused" in text and "resolver" in text
    for secret in secrets:  # not even a part of one: any 16 characters in a row
        for start in range(0, max(len(secret) - 16, 0) + 1, 4):
            assert secret[start : start + 16] not in text, "a credential fragment reached the logs"
    assert attacker_kid not in text


def test_proxy_mode_health_names_the_trusted_networks() -> None:
    verifier = Verifier(Settings(endpoint="https://a.example", mode="proxy", trusted_proxies=["10.0.0.0/8", "::1"]))
    assert verifier.health()["trusted_proxies"] == "10.0.0.0/8, ::1/128"
