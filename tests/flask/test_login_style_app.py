"""The app of ``tests/support/flask_login_style.py``, tested as its authors would: the plugin's fixtures and client."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_authgear.pytest_plugin import TokenFactory
from flask_authgear.testing import AuthgearClient, AuthgearTestServer
from tests.support.auth import bearer
from tests.support.flask_login_style import create_app


@pytest.fixture
def app(authgear_server: AuthgearTestServer) -> Flask:
    app = create_app(authgear_server.flask_config())
    app.test_client_class = AuthgearClient
    return app


def test_the_home_page_greets_a_guest(app: Flask) -> None:
    assert app.test_client().get("/").text == "Welcome, guest. Please sign in."


def test_the_home_page_greets_a_member_by_name(app: Flask) -> None:
    assert app.test_client(user="alice").get("/").text == "Welcome back, Alice Liddell!"


def test_a_stranger_to_the_app_is_refused(app: Flask) -> None:
    response = app.test_client(user="mallory", roles=["member"]).get("/api/profile")
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The user is not known to this application."


def test_the_api_needs_a_member(app: Flask, authgear_token: TokenFactory) -> None:
    client = app.test_client()
    response = client.get("/api/profile")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authgear"'
    guest = bearer(authgear_token("bob", roles=["guest"]))
    assert client.get("/api/profile", headers=guest).status_code == 403
    member = bearer(authgear_token("bob", roles=["member"]))
    assert client.get("/api/profile", headers=member).get_json() == {
        "id": "bob",
        "name": "Bob Cratchit",
        "roles": ["member"],
    }


def test_deleting_a_member_needs_both_roles(app: Flask) -> None:
    assert app.test_client(user="alice", roles=["member"]).delete("/api/members/bob").status_code == 403
    assert app.test_client(user="alice", roles=["admin"]).delete("/api/members/bob").status_code == 403
    admin = app.test_client(user="alice", roles=["member", "admin"])
    assert admin.delete("/api/members/bob").status_code == 204
    assert admin.delete("/api/members/bob").status_code == 404
    assert app.test_client(user="bob", roles=["member"]).get("/api/profile").status_code == 401


def test_each_app_of_the_factory_has_its_own_store(authgear_server: AuthgearTestServer) -> None:
    first = create_app(authgear_server.flask_config())
    second = create_app(authgear_server.flask_config(), member_names={"alice": "Alice Two"})
    for app in (first, second):
        app.test_client_class = AuthgearClient
    assert first.test_client(user="alice").get("/").text == "Welcome back, Alice Liddell!"
    assert second.test_client(user="alice").get("/").text == "Welcome back, Alice Two!"
