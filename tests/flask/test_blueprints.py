"""auth.protect(blueprint): every view of a blueprint protected; and a wrong decorator order refused loudly."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from flask import Blueprint, Flask

from flask_authgear import (
    Authgear,
    AuthgearUser,
    ConfigurationError,
    current_user,
    get_app_user,
    require_auth,
)
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer


def new_app(server: AuthgearTestServer) -> tuple[Flask, Authgear]:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    app.testing = True  # errors raised while handling a request reach the test
    return app, Authgear(app)


# -- protect -------------------------------------------------------------------------------------------------


def test_every_view_of_a_protected_blueprint_needs_a_user(server: AuthgearTestServer) -> None:
    app, auth = new_app(server)
    api = Blueprint("api", __name__, url_prefix="/api")
    assert auth.protect(api, roles=["staff"]) is api

    @api.get("/items")
    def items() -> dict[str, Any]:
        return {"user": current_user.id}

    @api.get("/secret")
    @require_auth(verified=True)
    def secret() -> dict[str, Any]:
        return {"secret": current_user.id}

    @api.get("/news")
    @require_auth(optional=True)
    def news() -> dict[str, Any]:
        return {"news": current_user.id}

    @app.get("/open")
    def open_view() -> str:
        return "open"

    app.register_blueprint(api)
    client = app.test_client()
    assert client.get("/open").status_code == 200
    assert client.get("/api/items").status_code == 401
    assert client.get("/api/items", headers=bearer(server.issue_token("a", roles=["guest"]))).status_code == 403
    assert client.get("/api/items", headers=bearer(server.issue_token("a", roles=["staff"]))).get_json() == {
        "user": "a"
    }
    # Both the blueprint's and the view's requirements apply: the stricter wins.
    unverified = server.issue_token("a", roles=["staff"], is_verified=False)
    assert client.get("/api/secret", headers=bearer(unverified)).status_code == 403
    verified_guest = server.issue_token("a", roles=["guest"], is_verified=True)
    assert client.get("/api/secret", headers=bearer(verified_guest)).status_code == 403
    staff = server.issue_token("a", roles=["staff"], is_verified=True)
    assert client.get("/api/secret", headers=bearer(staff)).get_json() == {"secret": "a"}
    assert client.get("/api/news").status_code == 401  # the blueprint needs a user even where the view does not
    assert client.get("/api/news", headers=bearer(staff)).get_json() == {"news": "a"}
    preflight = {"Access-Control-Request-Method": "GET", "Origin": "https://app.example"}
    assert client.options("/api/items", headers=preflight).status_code == 200  # CORS preflight
    assert client.options("/api/items").status_code == 401  # any other OPTIONS is checked like a GET


def test_an_optional_blueprint_with_a_strict_view(server: AuthgearTestServer) -> None:
    app, auth = new_app(server)
    calls: list[str] = []

    @auth.user_loader
    def load(user: AuthgearUser) -> str:
        calls.append(user.id)
        return user.id.upper()

    site = auth.protect(Blueprint("site", __name__), optional=True)

    @site.get("/")
    def home() -> dict[str, Any]:
        return {"user": current_user.id if current_user else None}

    @site.get("/account")
    @require_auth
    def account() -> dict[str, Any]:
        return {"app_user": get_app_user()}

    app.register_blueprint(site)
    client = app.test_client()
    assert client.get("/").get_json() == {"user": None}
    assert client.get("/", headers=bearer("forged")).status_code == 401
    assert client.get("/account").status_code == 401
    assert client.get("/account", headers=bearer(server.issue_token("bo"))).get_json() == {"app_user": "BO"}
    assert calls == ["bo"]  # checked twice, loaded once


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"roles": []}, id="empty-roles"),
        pytest.param({"max_auth_age": -5}, id="negative-age"),
    ],
)
def test_protect_validates_its_options_when_declared(server: AuthgearTestServer, options: dict[str, Any]) -> None:
    auth = Authgear()
    with pytest.raises(ConfigurationError):
        auth.protect(Blueprint("bp", __name__), **options)


def test_protect_takes_a_blueprint_only(server: AuthgearTestServer) -> None:
    app, auth = new_app(server)
    with pytest.raises(ConfigurationError, match="Blueprint"):
        auth.protect(app)  # type: ignore[arg-type]


# -- decorator order -----------------------------------------------------------------------------------------


def test_require_auth_above_app_route_is_refused(server: AuthgearTestServer) -> None:
    app, _ = new_app(server)

    @require_auth
    @app.get("/admin")
    def admin() -> str:
        return "every secret"

    client = app.test_client()
    with pytest.raises(ConfigurationError, match="'admin'"):
        client.get("/admin")
    with pytest.raises(ConfigurationError):  # not once: every request, until the app is fixed
        client.get("/admin")


def test_require_auth_above_blueprint_route_is_refused(server: AuthgearTestServer) -> None:
    app, _ = new_app(server)
    bp = Blueprint("reports", __name__)

    @require_auth(roles=["admin"])
    @bp.get("/reports")
    def reports() -> str:
        return "every secret"

    app.register_blueprint(bp)
    with pytest.raises(ConfigurationError, match=r"'reports\.reports'"):
        app.test_client().get("/reports")


def test_require_auth_above_a_route_declared_in_an_app_factory_is_refused(server: AuthgearTestServer) -> None:
    # The wrapper that @require_auth returned dies when the factory returns; the route still serves the bare view.
    def create_app() -> Flask:
        app, _ = new_app(server)

        @require_auth
        @app.get("/admin")
        def admin() -> str:
            return "every secret"

        return app

    app = create_app()
    gc.collect()
    with pytest.raises(ConfigurationError, match="'admin'"):
        app.test_client().get("/admin")


def test_routes_declared_before_init_app_are_checked_at_init_app(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())

    @require_auth
    @app.get("/admin")
    def admin() -> str:
        return "every secret"

    with pytest.raises(ConfigurationError, match="'admin'"):
        Authgear(app)


def test_the_right_order_and_a_deliberately_public_copy_pass(server: AuthgearTestServer) -> None:
    app, _ = new_app(server)

    def report() -> str:
        return "report"

    app.add_url_rule("/public-report", "public_report", report)
    app.add_url_rule("/report", "report", require_auth(report))

    @app.get("/me")
    @require_auth
    def me() -> str:
        return current_user.id

    client = app.test_client()
    assert client.get("/public-report").status_code == 200
    assert client.get("/report").status_code == 401
    assert client.get("/me", headers=bearer(server.issue_token("z"))).text == "z"
