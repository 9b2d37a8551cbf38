"""``current_user`` in a view without a decorator, as flask-login users expect: optional semantics on first read.

The first read authenticates the request as ``@require_auth(optional=True)`` would, under the same rules
(anonymous users, cookies on cross-site unsafe requests, the user loader), except that nothing it finds raises:
no credentials, bad ones, a refusal or an outage all read as the falsy no-user object. Decorated views and
``verify_request`` keep their strict answers, and a refused request never shows a user afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, Response, render_template_string, request
from flask.testing import FlaskClient

from flask_authgear import (
    Authgear,
    AuthgearError,
    current_app_user,
    current_user,
    get_app_user,
    get_current_user,
    require_auth,
    verify_request,
)
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer


def seen() -> dict[str, Any]:
    return {
        "user": current_user.id if current_user else None,
        "authenticated": current_user.is_authenticated,
        "truthy": bool(current_user),
    }


def build_app(server: AuthgearTestServer, **config: Any) -> tuple[Flask, Authgear]:
    app = Flask(__name__)
    app.config.update(server.flask_config(**config))
    auth = Authgear(app)

    @app.route("/page", methods=["GET", "POST"])
    def page() -> dict[str, Any]:
        return seen()

    @app.get("/template")
    def template() -> str:
        return render_template_string(
            "{% if current_user.is_authenticated %}{{ current_user.id }}{% else %}-{% endif %}"
        )

    @app.get("/strict")
    @require_auth(roles=["admin"])
    def strict() -> dict[str, Any]:
        return seen()

    return app, auth


@pytest.fixture
def client(server: AuthgearTestServer) -> FlaskClient:
    return build_app(server)[0].test_client()


NOBODY = {"user": None, "authenticated": False, "truthy": False}


def test_a_valid_token_is_the_user_in_an_undecorated_view(client: FlaskClient, server: AuthgearTestServer) -> None:
    response = client.get("/page", headers=bearer(server.issue_token("alice")))
    assert response.get_json() == {"user": "alice", "authenticated": True, "truthy": True}
    # The answer depends on the credentials, as a decorated view's does.
    assert {"Authorization", "Cookie"} <= set(response.vary)
    assert client.get("/template", headers=bearer(server.issue_token("bob"))).text == "bob"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(bearer("not-a-token"), id="garbage"),
        pytest.param({"Authorization": "Basic YTpi"}, id="other-scheme"),
        pytest.param({"Authorization": "Bearer " + "a" * 20000}, id="oversized"),
    ],
)
def test_no_or_bad_credentials_are_nobody_never_an_error(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/page", headers=headers)
    assert (response.status_code, response.get_json()) == (200, NOBODY)
    assert client.get("/template", headers=headers).text == "-"


def test_a_token_of_another_project_or_expired_is_nobody(client: FlaskClient, server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as other:
        assert client.get("/page", headers=bearer(other.issue_token("eve"))).get_json() == NOBODY
    assert client.get("/page", headers=bearer(server.issue_token("old", expires_in=-600))).get_json() == NOBODY


def test_an_anonymous_user_is_nobody(client: FlaskClient, server: AuthgearTestServer) -> None:
    token = server.issue_token("anon", is_anonymous=True)
    assert client.get("/page", headers=bearer(token)).get_json() == NOBODY


def test_a_machine_is_nobody(server: AuthgearTestServer) -> None:
    """A client-credentials token proves a program, not a person: the first read refuses it as a route without
    allow_machine does."""
    api = "https://api.example.com/orders"
    client = build_app(server, audience=[server.endpoint, api])[0].test_client()
    token = server.machine_token("b892697a2075af58", resource=api, scopes=["read:orders"])
    assert client.get("/page", headers=bearer(token)).get_json() == NOBODY
    assert client.get("/page", headers=bearer(server.issue_token("person"))).get_json()["user"] == "person"


def test_an_outage_is_nobody_not_a_500(server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as failing:
        client = build_app(failing)[0].test_client()
        token = failing.issue_token("u")
        with failing.failing("jwks", "500"), failing.failing("discovery", "500"):
            response = client.get("/page", headers=bearer(token))
    assert (response.status_code, response.get_json()) == (200, NOBODY)


def test_a_cross_site_cookie_post_is_nobody(server: AuthgearTestServer) -> None:
    client = build_app(server, mode="resolver", resolver_negative_ttl=0)[0].test_client(use_cookies=False)
    session = server.create_session("carol")
    hostile = {"Cookie": session.cookie, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post("/page", headers=hostile).get_json() == NOBODY
    same_site = {"Cookie": session.cookie, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/page", headers=same_site).get_json()["user"] == "carol"
    assert client.get("/page", headers={"Cookie": session.cookie}).get_json()["user"] == "carol"


def test_the_user_loader_decides_and_its_failure_is_nobody(
    server: AuthgearTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, auth = build_app(server)
    known = {"alice": "Alice"}

    @auth.user_loader
    def load(user: Any) -> str | None:
        if user.id == "boom":
            raise RuntimeError("database down")
        return known.get(user.id)

    @app.get("/app-user")
    def app_user() -> dict[str, Any]:
        return {**seen(), "app_user": get_app_user(), "proxy": bool(current_app_user)}

    client = app.test_client()
    answer = client.get("/app-user", headers=bearer(server.issue_token("alice"))).get_json()
    assert answer == {"user": "alice", "authenticated": True, "truthy": True, "app_user": "Alice", "proxy": True}
    stranger = client.get("/app-user", headers=bearer(server.issue_token("stranger")))
    assert stranger.get_json() == {**NOBODY, "app_user": None, "proxy": False}
    with caplog.at_level(logging.ERROR, logger="flask_authgear"):
        response = client.get("/app-user", headers=bearer(server.issue_token("boom")))
    assert (response.status_code, response.get_json()) == (200, {**NOBODY, "app_user": None, "proxy": False})
    assert "database down" in caplog.text


def test_the_first_read_is_remembered_for_the_request(server: AuthgearTestServer) -> None:
    app, _ = build_app(server)
    reads: list[Any] = []

    @app.get("/twice")
    def twice() -> dict[str, Any]:
        first = get_current_user()
        assert request.environ["authgear.user"] is first
        reads.append((first, get_current_user(), server.hits("jwks")))
        return seen()

    client = app.test_client()
    client.get("/twice", headers=bearer(server.issue_token("a")))
    client.get("/twice")
    (user_a, again_a, _), (nobody, again_nobody, _) = reads
    assert user_a is again_a and user_a.id == "a"
    assert nobody is None and again_nobody is None


def test_each_request_gets_its_own_answer(client: FlaskClient, server: AuthgearTestServer) -> None:
    """No identity outlives its request: alternating users and nobody on one client, one app, one thread."""
    for name in ("a", "b", "a"):
        assert client.get("/page", headers=bearer(server.issue_token(name))).get_json()["user"] == name
        assert client.get("/page").get_json() == NOBODY


def test_decorated_views_keep_their_strict_answers(client: FlaskClient, server: AuthgearTestServer) -> None:
    assert client.get("/strict").status_code == 401
    assert client.get("/strict", headers=bearer("garbage")).status_code == 401
    assert client.get("/strict", headers=bearer(server.issue_token("u", roles=["user"]))).status_code == 403
    ok = client.get("/strict", headers=bearer(server.issue_token("root", roles=["admin"])))
    assert ok.get_json() == {"user": "root", "authenticated": True, "truthy": True}


def test_a_refused_request_never_shows_a_user_after_the_refusal(server: AuthgearTestServer) -> None:
    """A valid token refused for its roles: the error handler, after_request and the template see nobody, even
    though the same token would pass an optional check."""
    app, _ = build_app(server)
    after: list[Any] = []

    @app.errorhandler(AuthgearError)
    def handle(error: Any) -> tuple[str, int]:
        return render_template_string("{{ current_user.is_authenticated }}"), error.status_code

    @app.after_request
    def record(response: Response) -> Response:
        after.append((bool(current_user), get_current_user()))
        return response

    @app.get("/read-then-refuse")
    def read_then_refuse() -> str:
        assert current_user.id == "u"  # the optional read finds the user first
        verify_request(roles=["admin"])
        return "never"

    client = app.test_client()
    token = bearer(server.issue_token("u", roles=["user"]))
    response = client.get("/strict", headers=token)
    assert (response.status_code, response.text) == (403, "False")
    response = client.get("/read-then-refuse", headers=token)
    assert (response.status_code, response.text) == (403, "False")
    assert after == [(False, None), (False, None)]


def test_verify_request_stays_strict_after_an_optional_read(client: FlaskClient, server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)

    @app.get("/read-then-verify")
    def read_then_verify() -> dict[str, Any]:
        assert not current_user
        verify_request()
        return {"never": True}

    assert app.test_client().get("/read-then-verify", headers=bearer("garbage")).status_code == 401


def test_outside_a_request_or_without_the_extension_is_nobody(server: AuthgearTestServer) -> None:
    assert not current_user
    bare = Flask(__name__)

    @bare.get("/page")
    def page() -> dict[str, Any]:
        return seen()

    assert bare.test_client().get("/page", headers=bearer(server.issue_token("x"))).get_json() == NOBODY
