"""The request rules both adapters share, checked through each: the same request gets the same answer from the
Flask extension and from the WSGI middleware (CORS preflight, other OPTIONS, anonymous users, Vary, an unexpected
exception, forged identity headers and the webhook signature header)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.test import Client

from flask_authgear import Authgear, AuthgearMiddleware, Verifier, current_user, require_auth
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.testing.client import configure
from tests.support.auth import bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SIGNATURE = "a" * 64
IDENTITY = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "forged",
    "X-Authgear-User-Roles": "admin",
    "X-Authgear-Session-Amr": "pwd",
    "X-Authgear-Anything-Else": "1",
}
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


def _seen(headers: Callable[[str], str | None]) -> dict[str, Any]:
    return {"signature": headers("X-Authgear-Body-Signature"), "identity": {k: headers(k) for k in IDENTITY}}


def flask_target(server: AuthgearTestServer, allow_anonymous: bool) -> tuple[WSGIApplication, Verifier]:
    app = Flask("rules-flask")
    configure(app, server)
    ext = Authgear(app)

    @app.route("/api/me", methods=["GET", "POST", "OPTIONS"])
    @require_auth(allow_anonymous=allow_anonymous)
    def me() -> Any:
        return jsonify(sub=current_user.id if current_user else None, **_seen(request.headers.get))

    @app.post("/webhook")
    def webhook() -> Any:
        return jsonify(_seen(request.headers.get))

    with app.app_context():
        verifier = ext.verifier
    return app, verifier


def wsgi_target(server: AuthgearTestServer, allow_anonymous: bool) -> tuple[WSGIApplication, Verifier]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        user = environ["authgear.user"]

        def header(name: str) -> str | None:
            value: str | None = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return value

        body = json.dumps({"sub": user.id if user else None, **_seen(header)}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    middleware = AuthgearMiddleware(app, protect=["/api"], allow_anonymous=allow_anonymous, **server.settings())
    return middleware, middleware.verifier


Build = Callable[[AuthgearTestServer, bool], tuple["WSGIApplication", Verifier]]
ADAPTERS = [pytest.param(flask_target, id="flask"), pytest.param(wsgi_target, id="wsgi")]


@dataclass(frozen=True)
class Case:
    """One request and the answer both adapters must give."""

    id: str
    method: str
    headers: Callable[[AuthgearTestServer], dict[str, str]]
    status: int
    sub: str | None = None
    allow_anonymous: bool = False


CASES = [
    Case("preflight-passes", "OPTIONS", lambda s: PREFLIGHT, 200),
    Case("preflight-with-garbage-token-passes", "OPTIONS", lambda s: {**PREFLIGHT, **bearer("junk")}, 200),
    Case("options-without-credentials", "OPTIONS", lambda s: {"Origin": "https://app.example"}, 401),
    Case("options-with-garbage-token", "OPTIONS", lambda s: bearer("junk"), 401),
    Case("options-with-token", "OPTIONS", lambda s: bearer(s.issue_token("olive")), 200, "olive"),
    Case("anonymous-refused", "GET", lambda s: bearer(s.issue_token("anon", is_anonymous=True)), 403),
    Case("anonymous-allowed", "GET", lambda s: bearer(s.issue_token("anon", is_anonymous=True)), 200, "anon", True),
    Case("user", "GET", lambda s: bearer(s.issue_token("ursula")), 200, "ursula"),
]


@pytest.mark.parametrize("build", ADAPTERS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_same_rules_in_both_adapters(server: AuthgearTestServer, build: Build, case: Case) -> None:
    app, _ = build(server, case.allow_anonymous)
    response = Client(app).open("/api/me", method=case.method, headers=case.headers(server))
    assert response.status_code == case.status, response.data
    if case.status == 200:
        assert json.loads(response.data)["sub"] == case.sub
    else:
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authgear"')


@pytest.mark.parametrize("build", ADAPTERS)
def test_authenticated_answers_vary_on_credentials(server: AuthgearTestServer, build: Build) -> None:
    """A shared cache must never serve one user's answer to another."""
    app, _ = build(server, False)
    response = Client(app).get("/api/me", headers=bearer(server.issue_token("vera")))
    assert response.status_code == 200
    assert {"Authorization", "Cookie"} <= set(response.headers["Vary"].replace(" ", "").split(","))


@pytest.mark.parametrize("build", ADAPTERS)
def test_an_unexpected_exception_is_a_logged_503(
    server: AuthgearTestServer, build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    app, verifier = build(server, False)

    class Broken(JWTVerifier):
        def verify(self, token: str) -> Any:
            raise RuntimeError("secret detail")

    verifier.jwt = Broken(verifier.settings, verifier.jwks)
    with caplog.at_level(logging.ERROR, logger="flask_authgear"):
        response = Client(app).get("/api/me", headers=bearer(server.issue_token()))
    assert response.status_code == 503
    assert json.loads(response.data)["error"] == "temporarily_unavailable"
    assert b"secret detail" not in response.data
    assert "secret detail" in caplog.text  # the traceback is in the log, for the operator


@pytest.mark.parametrize("build", ADAPTERS)
@pytest.mark.parametrize("path", ["/api/me", "/webhook"])
def test_identity_headers_go_and_the_webhook_signature_stays(
    server: AuthgearTestServer, build: Build, path: str
) -> None:
    app, _ = build(server, False)
    headers = {**IDENTITY, "X-Authgear-Body-Signature": SIGNATURE, **bearer(server.issue_token("wendy"))}
    response = Client(app).post(path, headers=headers)
    assert response.status_code == 200
    seen = json.loads(response.data)
    assert seen["signature"] == SIGNATURE
    assert seen["identity"] == dict.fromkeys(IDENTITY)
