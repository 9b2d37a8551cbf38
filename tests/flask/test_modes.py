"""The Flask extension and the WSGI middleware in resolver and auto modes: sessions, cookies, the same answers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client

from flask_authgear import Authgear, AuthgearMiddleware, current_user, require_auth
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer
from tests.support.clock import Clock, clocked, wall_clock

REALM = 'Bearer realm="authgear"'
INVALID = f'{REALM}, error="invalid_token", error_description="The access token is invalid."'
BAD_SESSION = f'{REALM}, error="invalid_token", error_description="The session is invalid or has expired."'
#: How long the apps below reuse a resolver answer; the module's apps run on an injected clock to pass it.
RESOLVER_CACHE_TTL = 30.0
CROSS_SITE = (
    f'{REALM}, error="insufficient_scope", '
    'error_description="Cross-site requests authenticated by a session cookie are not allowed."'
)


def build_app(server: AuthgearTestServer, mode: str) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config(mode=mode, resolver_cache_ttl=RESOLVER_CACHE_TTL, resolver_negative_ttl=0))
    Authgear(app)

    @app.route("/me", methods=["GET", "POST"])
    @require_auth
    def me() -> dict[str, Any]:
        return {"user": current_user.id, "source": current_user.source, "roles": sorted(current_user.roles)}

    @app.get("/admin")
    @require_auth(roles=["admin"], max_auth_age=300)
    def admin() -> dict[str, Any]:
        return {"admin": current_user.id}

    @app.get("/optional")
    @require_auth(optional=True)
    def optional() -> dict[str, Any]:
        return {"user": current_user.id if current_user else None}

    return app


@pytest.fixture(scope="module")
def clock() -> Clock:
    return wall_clock()


@pytest.fixture(scope="module", params=["resolver", "auto"])
def client(request: pytest.FixtureRequest, server: AuthgearTestServer, clock: Clock) -> FlaskClient:
    app = build_app(server, request.param)
    with app.app_context():
        clocked(app.extensions["authgear"].verifier, clock)
    return app.test_client(use_cookies=False)


def test_session_by_bearer_and_by_cookie(client: FlaskClient, server: AuthgearTestServer) -> None:
    session = server.create_session("sam", roles=["editor"])
    by_token = client.get("/me", headers=bearer(session.token))
    assert by_token.get_json() == {"user": "sam", "source": "resolver", "roles": ["editor"]}
    by_cookie = client.get("/me", headers={"Cookie": session.cookie})
    assert by_cookie.get_json() == {"user": "sam", "source": "resolver", "roles": ["editor"]}


def test_refusals(client: FlaskClient, server: AuthgearTestServer) -> None:
    missing = client.get("/me")
    assert (missing.status_code, missing.headers["WWW-Authenticate"]) == (401, REALM)
    assert missing.get_json() == {"error": "unauthorized", "error_description": "Authentication is required."}
    opaque = client.get("/me", headers=bearer("unknown-opaque-token"))
    assert (opaque.status_code, opaque.headers["WWW-Authenticate"]) == (401, INVALID)
    cookie = client.get("/me", headers={"Cookie": "session=unknown"})
    assert (cookie.status_code, cookie.headers["WWW-Authenticate"]) == (401, BAD_SESSION)
    assert cookie.get_json() == {
        "error": "invalid_token",
        "error_description": "The session is invalid or has expired.",
    }
    assert client.get("/optional", headers={"Cookie": "session=unknown"}).status_code == 401
    assert client.get("/optional").get_json() == {"user": None}


def test_revoked_session_is_refused(client: FlaskClient, server: AuthgearTestServer, clock: Clock) -> None:
    session = server.create_session("rita")
    assert client.get("/me", headers=bearer(session.token)).status_code == 200
    server.revoke(session)
    clock.advance(RESOLVER_CACHE_TTL + 1)  # past the resolver cache TTL this app is configured with
    response = client.get("/me", headers=bearer(session.token))
    assert (response.status_code, response.headers["WWW-Authenticate"]) == (401, INVALID)


def test_roles_and_authentication_age_from_the_resolver(client: FlaskClient, server: AuthgearTestServer) -> None:
    viewer = server.create_session("v", roles=["viewer"])
    assert client.get("/admin", headers={"Cookie": viewer.cookie}).status_code == 403
    old = server.create_session("o", roles=["admin"], authenticated_at=int(time.time()) - 3600)
    stale = client.get("/admin", headers={"Cookie": old.cookie})
    assert stale.status_code == 401
    assert stale.get_json()["error"] == "insufficient_user_authentication"
    assert stale.get_json()["max_age"] == "300"
    fresh = server.create_session("f", roles=["admin"])
    assert client.get("/admin", headers={"Cookie": fresh.cookie}).get_json() == {"admin": "f"}


def test_anonymous_session_is_refused(client: FlaskClient, server: AuthgearTestServer) -> None:
    anonymous = server.create_session("anon", is_anonymous=True)
    assert client.get("/me", headers=bearer(anonymous.token)).status_code == 403


def test_cross_site_cookie_post_is_refused(client: FlaskClient, server: AuthgearTestServer) -> None:
    session = server.create_session("c")
    hostile = {"Cookie": session.cookie, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = client.post("/me", headers=hostile)
    assert (response.status_code, response.headers["WWW-Authenticate"]) == (403, CROSS_SITE)
    same_site = {"Cookie": session.cookie, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/me", headers=same_site).get_json()["user"] == "c"
    by_token = {"Authorization": session.authorization, "Origin": "https://evil.example"}
    assert client.post("/me", headers=by_token).get_json()["user"] == "c"


def test_auto_mode_verifies_jwts_locally(server: AuthgearTestServer) -> None:
    client = build_app(server, "auto").test_client()
    before = server.hits("resolver")
    response = client.get("/me", headers=bearer(server.issue_token("jay")))
    assert response.get_json() == {"user": "jay", "source": "jwt", "roles": []}
    assert server.hits("resolver") == before


def test_resolver_unreachable_is_503(server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as other:
        client = build_app(other, "resolver").test_client()
        session = other.create_session("x")
        with other.unreachable():
            response = client.get("/me", headers=bearer(session.token))
    assert (response.status_code, response.headers["WWW-Authenticate"]) == (503, REALM)
    assert response.get_json()["error"] == "temporarily_unavailable"


# -- the middleware in resolver mode --------------------------------------------------------------------------


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    user = environ["authgear.user"]
    body = json.dumps({"user": None if user is None else user.id}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_middleware_in_resolver_mode(server: AuthgearTestServer) -> None:
    wrapped = AuthgearMiddleware(echo, protect="/api", **server.settings(mode="resolver", resolver_negative_ttl=0))
    client = Client(wrapped, use_cookies=False)  # send the Cookie header as given
    session = server.create_session("mia")
    assert client.get("/api/x", headers={"Cookie": session.cookie}).json == {"user": "mia"}
    assert client.get("/api/x", headers=bearer(session.token)).json == {"user": "mia"}
    refused = client.get("/api/x", headers={"Cookie": "session=nope"})
    assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (401, BAD_SESSION)
    hostile = {"Cookie": session.cookie, "Sec-Fetch-Site": "cross-site"}
    posted = client.post("/api/x", headers=hostile)
    assert (posted.status_code, posted.headers["WWW-Authenticate"]) == (403, CROSS_SITE)
    assert client.get("/elsewhere", headers={"Cookie": session.cookie}).json == {"user": "mia"}
