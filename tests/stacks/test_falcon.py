"""AuthgearMiddleware in front of a Falcon app, served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import falcon
import pytest
import requests

from flask_authgear import AuthgearMiddleware, AuthgearUser
from flask_authgear.testing import AuthgearTestServer
from tests.support.app_server import AppServer
from tests.support.auth import bearer

REALM = 'Bearer realm="authgear"'


class Me:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user: AuthgearUser = req.env["authgear.user"]
        resp.media = {"id": user.id, "roles": sorted(user.roles), "forged": req.get_header("X-Authgear-User-Id")}


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user: AuthgearUser | None = req.env["authgear.user"]
        error = req.env["authgear.error"]
        resp.media = {
            "hello": user.id if user else "stranger",
            "why": None if error is None else error.error,
        }


class Admin:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user: AuthgearUser = req.env["authgear.user"]
        if not user.has_role("admin"):
            raise falcon.HTTPForbidden()
        resp.media = {"admin": user.id}


@pytest.fixture(scope="module")
def authgear() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as running:
        yield running


@pytest.fixture(scope="module")
def base_url(authgear: AuthgearTestServer) -> Iterator[str]:
    app = falcon.App()
    app.add_route("/api/me", Me())
    app.add_route("/api/admin", Admin())
    app.add_route("/hello", Hello())
    wrapped = AuthgearMiddleware(app, protect=["/api"], **authgear.settings())
    with AppServer(wrapped) as http:
        yield http.url


def test_protected_route_without_credentials(base_url: str) -> None:
    response = requests.get(f"{base_url}/api/me", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.json() == {"error": "unauthorized", "error_description": "Authentication is required."}


def test_protected_route_with_invalid_token(base_url: str, authgear: AuthgearTestServer) -> None:
    response = requests.get(f"{base_url}/api/me", headers=bearer(authgear.issue_token(expires_in=-60)), timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'{REALM}, error="invalid_token", error_description="The access token has expired."'
    )
    assert response.json() == {"error": "invalid_token", "error_description": "The access token has expired."}


def test_protected_route_with_valid_token_and_forged_header(base_url: str, authgear: AuthgearTestServer) -> None:
    headers = {**bearer(authgear.issue_token("falcon-user", roles=["viewer"])), "X-Authgear-User-Id": "forged"}
    response = requests.get(f"{base_url}/api/me", headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"id": "falcon-user", "roles": ["viewer"], "forged": None}


def test_role_checked_by_the_app(base_url: str, authgear: AuthgearTestServer) -> None:
    viewer = requests.get(f"{base_url}/api/admin", headers=bearer(authgear.issue_token(roles=["viewer"])), timeout=5)
    assert viewer.status_code == 403
    admin = requests.get(
        f"{base_url}/api/admin", headers=bearer(authgear.issue_token("boss", roles=["admin"])), timeout=5
    )
    assert admin.json() == {"admin": "boss"}


def test_unprotected_route_is_annotated(base_url: str, authgear: AuthgearTestServer) -> None:
    assert requests.get(f"{base_url}/hello", timeout=5).json() == {"hello": "stranger", "why": None}
    bad = requests.get(f"{base_url}/hello", headers=bearer("junk"), timeout=5).json()
    assert bad == {"hello": "stranger", "why": "invalid_token"}
    good = requests.get(f"{base_url}/hello", headers=bearer(authgear.issue_token("f")), timeout=5).json()
    assert good == {"hello": "f", "why": None}


def test_preflight_reaches_falcon(base_url: str) -> None:
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    response = requests.options(f"{base_url}/api/me", headers=headers, timeout=5)
    assert response.status_code != 401
    assert "WWW-Authenticate" not in response.headers
