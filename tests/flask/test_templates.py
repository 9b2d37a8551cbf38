"""current_user and current_app_user in Jinja templates, written as for flask-login."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_authgear import Authgear, AuthgearUser, current_app_user, current_user, require_auth
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer

PAGE = (
    "{% if current_user.is_authenticated %}Hello {{ current_user.id }}"
    "{% if current_app_user %} ({{ current_app_user['name'] }}){% endif %}"
    "{% else %}Please sign in{% endif %}"
)


def build_app(server: AuthgearTestServer) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)

    @auth.user_loader
    def load(user: AuthgearUser) -> dict[str, str]:
        return {"name": user.id.title()}

    @app.get("/page")
    @require_auth(optional=True)
    def page() -> str:
        return render_template_string(PAGE)

    @app.get("/public")
    def public() -> str:
        return render_template_string(PAGE)

    return app


def test_templates_see_the_user_and_the_app_user(server: AuthgearTestServer) -> None:
    client = build_app(server).test_client()
    assert client.get("/page", headers=bearer(server.issue_token("alice"))).text == "Hello alice (Alice)"


def test_templates_without_a_user(server: AuthgearTestServer) -> None:
    client = build_app(server).test_client()
    assert client.get("/page").text == "Please sign in"
    assert client.get("/public").text == "Please sign in"
    assert client.get("/public", headers=bearer("garbage")).text == "Please sign in"


def test_a_template_of_an_undecorated_view_sees_the_user(server: AuthgearTestServer) -> None:
    """As with flask-login: the first read of current_user authenticates the request, optionally."""
    client = build_app(server).test_client()
    assert client.get("/public", headers=bearer(server.issue_token("alice"))).text == "Hello alice (Alice)"


def test_init_app_twice_adds_the_template_context_once(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)
    auth.init_app(app)
    assert len(app.template_context_processors[None]) == 2  # Flask's own and this one


def test_is_authenticated_on_the_user_and_on_the_proxy(server: AuthgearTestServer) -> None:
    app = build_app(server)
    seen: dict[str, Any] = {}

    @app.get("/me")
    @require_auth(optional=True)
    def me() -> str:
        seen.update(proxy=current_user.is_authenticated, truthy=bool(current_user))
        return "ok"

    assert AuthgearUser(id="u").is_authenticated is True
    client = app.test_client()
    client.get("/me", headers=bearer(server.issue_token("alice")))
    assert seen == {"proxy": True, "truthy": True}
    client.get("/me")
    assert seen == {"proxy": False, "truthy": False}
    assert current_user.is_authenticated is False  # outside a request too


def test_a_flask_login_template_testing_is_anonymous_shows_nobody_the_members_page(
    server: AuthgearTestServer,
) -> None:
    app = build_app(server)

    @app.get("/members")
    @require_auth(optional=True)
    def members() -> str:
        return render_template_string("{% if not current_user.is_anonymous %}members{% else %}sign in{% endif %}")

    client = app.test_client()
    assert client.get("/members").text == "sign in"
    assert client.get("/members", headers=bearer(server.issue_token("alice"))).text == "members"


def test_reading_a_user_attribute_without_a_user_says_why() -> None:
    assert not current_user
    assert current_user.is_anonymous is True
    assert not current_app_user
    with pytest.raises(AttributeError, match="no user is authenticated in this request"):
        current_user.roles  # noqa: B018
    with pytest.raises(AttributeError, match="is_authenticated"):
        current_user.has_role("admin")
    assert repr(current_user) == "<no authenticated user>"
