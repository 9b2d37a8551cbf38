"""Cross-site request forgery against cookie sessions, end to end through both adapters.

A page on another site can make the browser send a POST with the user's session cookie; it cannot make it send
an ``Authorization`` header. So a state-changing request authenticated by a cookie and coming cross-site must be
refused (403) before the view runs and before Authgear is even asked, while the same request from our own origin,
from a listed origin, or carrying a bearer token goes through.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_authgear.flask import Authgear, current_user, require_auth
from flask_authgear.testing.server import AuthgearTestServer, TestSession
from flask_authgear.wsgi import AuthgearMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

APP_ORIGIN = "https://app.example"
PARTNER = "https://partner.example"

CROSS_SITE: dict[str, dict[str, str]] = {
    "fetch-site-cross-site": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    "fetch-site-same-site": {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.app.example"},
    "fetch-site-cross-site-own-origin": {"Sec-Fetch-Site": "cross-site", "Origin": APP_ORIGIN},
    "origin-other-host": {"Origin": "https://evil.example"},
    "origin-other-port": {"Origin": "https://app.example:8443"},
    "origin-null": {"Origin": "null"},
    "origin-suffix-host": {"Origin": "https://app.example.evil.example"},
    "origin-garbage": {"Origin": "javascript:alert(1)"},
}
SAME_ORIGIN: dict[str, dict[str, str]] = {
    "fetch-site-same-origin": {"Sec-Fetch-Site": "same-origin", "Origin": APP_ORIGIN},
    "fetch-site-none": {"Sec-Fetch-Site": "none"},
    "origin-same-host": {"Origin": APP_ORIGIN},
    "no-browser-headers": {},
}
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


class Ledger:
    """Counts what views did, so a refused request is proven not to have acted."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []


def flask_target(server: AuthgearTestServer, ledger: Ledger, **overrides: Any) -> WSGIApplication:
    app = Flask("csrf-target")
    app.config.update(server.flask_config(mode="resolver", **overrides))
    Authgear(app)

    @app.route("/transfer", methods=list(STATE_CHANGING))
    @require_auth
    def transfer() -> Any:
        ledger.actions.append((current_user.id, "transfer"))
        return jsonify(sub=current_user.id)

    return app


def wsgi_target(server: AuthgearTestServer, ledger: Ledger, **overrides: Any) -> WSGIApplication:
    def transfer(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        user = environ["authgear.user"]
        ledger.actions.append((user.id, "transfer"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"sub": user.id}).encode()]

    return AuthgearMiddleware(transfer, protect=["/"], **server.settings(mode="auto", **overrides))


BUILDERS = {"flask-resolver": flask_target, "wsgi-auto": wsgi_target}


@pytest.fixture(scope="module")
def session(server: AuthgearTestServer) -> TestSession:
    return server.create_session("victim")


def send(app: WSGIApplication, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    environ = EnvironBuilder(path="/transfer", method=method, base_url=APP_ORIGIN, headers=headers).get_environ()
    body, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), dict(response_headers), b"".join(body)


@pytest.mark.parametrize("adapter", BUILDERS)
@pytest.mark.parametrize("method", STATE_CHANGING)
@pytest.mark.parametrize("browser", list(CROSS_SITE.values()), ids=list(CROSS_SITE))
def test_cross_site_cookie_requests_are_refused_before_anything_runs(
    server: AuthgearTestServer, session: TestSession, adapter: str, method: str, browser: dict[str, str]
) -> None:
    ledger = Ledger()
    app = BUILDERS[adapter](server, ledger)
    before = server.hits("resolver")
    status, headers, body = send(app, method, {"Cookie": session.cookie, **browser})
    assert status == 403
    assert json.loads(body)["error"] == "insufficient_scope"
    assert ledger.actions == []
    assert server.hits("resolver") == before  # refused before Authgear was asked
    text = body.decode() + " ".join(headers.values())
    assert session.cookie_value not in text
    assert all(value not in text for value in browser.values() if len(value) > 6)


@pytest.mark.parametrize("adapter", BUILDERS)
@pytest.mark.parametrize("browser", list(SAME_ORIGIN.values()), ids=list(SAME_ORIGIN))
def test_same_origin_cookie_requests_act(
    server: AuthgearTestServer, session: TestSession, adapter: str, browser: dict[str, str]
) -> None:
    ledger = Ledger()
    app = BUILDERS[adapter](server, ledger)
    status, _, body = send(app, "POST", {"Cookie": session.cookie, **browser})
    assert (status, json.loads(body)["sub"]) == (200, "victim")
    assert ledger.actions == [("victim", "transfer")]


@pytest.mark.parametrize("adapter", BUILDERS)
@pytest.mark.parametrize("browser", list(CROSS_SITE.values()), ids=list(CROSS_SITE))
def test_bearer_tokens_are_not_forgeable_so_not_refused(
    server: AuthgearTestServer, session: TestSession, adapter: str, browser: dict[str, str]
) -> None:
    ledger = Ledger()
    app = BUILDERS[adapter](server, ledger)
    status, _, _ = send(app, "DELETE", {"Authorization": session.authorization, **browser})
    assert status == 200
    assert ledger.actions == [("victim", "transfer")]


@pytest.mark.parametrize("adapter", BUILDERS)
def test_a_listed_origin_acts_and_an_unlisted_one_does_not(
    server: AuthgearTestServer, session: TestSession, adapter: str
) -> None:
    ledger = Ledger()
    app = BUILDERS[adapter](server, ledger, trusted_origins=[PARTNER])
    status, _, _ = send(app, "POST", {"Cookie": session.cookie, "Origin": PARTNER, "Sec-Fetch-Site": "cross-site"})
    assert status == 200
    status, _, _ = send(app, "POST", {"Cookie": session.cookie, "Origin": PARTNER + ".evil.example"})
    assert status == 403
    assert ledger.actions == [("victim", "transfer")]


@pytest.mark.parametrize("adapter", BUILDERS)
def test_opting_out_lets_cross_site_cookie_requests_through(
    server: AuthgearTestServer, session: TestSession, adapter: str
) -> None:
    ledger = Ledger()
    app = BUILDERS[adapter](server, ledger, csrf_protection=False)
    status, _, _ = send(app, "PUT", {"Cookie": session.cookie, **CROSS_SITE["fetch-site-cross-site"]})
    assert status == 200
    assert ledger.actions == [("victim", "transfer")]
