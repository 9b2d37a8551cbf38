"""@auth.user_loader: the app's own user for each authenticated request, as flask-login's user_loader."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from flask_authgear import (
    Authgear,
    AuthgearUser,
    ConfigurationError,
    current_app_user,
    get_app_user,
    get_current_user,
    require_auth,
    verify_request,
)
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer

UNKNOWN = (
    'Bearer realm="authgear", error="invalid_token", error_description="The user is not known to this application."'
)


@dataclass
class Account:
    name: str


ACCOUNTS = {"alice": Account("Alice"), "bob": Account("Bob")}


def build_app(server: AuthgearTestServer, calls: list[str], *, ext: Authgear | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    if ext is None:
        ext = Authgear(app)
    else:
        ext.init_app(app)

    @ext.user_loader
    def load(user: AuthgearUser) -> Account | None:
        calls.append(user.id)
        return ACCOUNTS.get(user.id)

    @app.get("/me")
    @require_auth(roles=["member"])
    def me() -> dict[str, Any]:
        return {"name": current_app_user.name, "same": get_app_user() is ACCOUNTS[current_app_user.name.lower()]}

    @app.get("/maybe")
    @require_auth(optional=True)
    def maybe() -> dict[str, Any]:
        return {"app_user": bool(current_app_user), "plain": get_app_user()}

    @app.get("/twice")
    @require_auth
    def twice() -> dict[str, Any]:
        verify_request(roles=["member"])
        return {"name": current_app_user.name}

    return app


def test_the_loaded_user_is_current_app_user(server: AuthgearTestServer) -> None:
    calls: list[str] = []
    client = build_app(server, calls).test_client()
    response = client.get("/me", headers=bearer(server.issue_token("alice", roles=["member"])))
    assert response.get_json() == {"name": "Alice", "same": True}
    assert calls == ["alice"]


def test_the_loader_runs_only_after_every_check_passed(server: AuthgearTestServer) -> None:
    calls: list[str] = []
    client = build_app(server, calls).test_client()
    assert client.get("/me", headers=bearer(server.issue_token("alice", roles=["guest"]))).status_code == 403
    assert client.get("/me", headers=bearer("not-a-token")).status_code == 401
    assert client.get("/me").status_code == 401
    assert calls == []


def test_an_unknown_user_is_refused_with_401(server: AuthgearTestServer) -> None:
    calls: list[str] = []
    app = build_app(server, calls)
    seen: list[Any] = []

    @app.teardown_request
    def record(exc: BaseException | None) -> None:
        seen.append((get_current_user(), get_app_user()))

    response = app.test_client().get("/me", headers=bearer(server.issue_token("mallory", roles=["member"])))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == UNKNOWN
    assert response.get_json() == {
        "error": "invalid_token",
        "error_description": "The user is not known to this application.",
    }
    assert calls == ["mallory"]
    assert seen == [(None, None)]  # a refused request keeps no user of either kind


def test_an_optional_route_without_credentials_has_no_app_user(server: AuthgearTestServer) -> None:
    calls: list[str] = []
    client = build_app(server, calls).test_client()
    assert client.get("/maybe").get_json() == {"app_user": False, "plain": None}
    assert calls == []
    response = client.get("/maybe", headers=bearer(server.issue_token("bob")))
    assert response.get_json()["app_user"] is True
    assert calls == ["bob"]


def test_the_loader_runs_once_when_the_request_is_checked_twice(server: AuthgearTestServer) -> None:
    calls: list[str] = []
    client = build_app(server, calls).test_client()
    response = client.get("/twice", headers=bearer(server.issue_token("bob", roles=["member"])))
    assert response.get_json() == {"name": "Bob"}
    assert calls == ["bob"]


class StoreDown(Exception):
    pass


def failing_store_app(server: AuthgearTestServer) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    ext = Authgear(app)

    @ext.user_loader
    def load(user: AuthgearUser) -> object:
        raise StoreDown("database unreachable")

    @app.get("/me")
    @require_auth
    def me() -> str:
        return "never"

    return app


def test_an_error_in_the_loader_is_the_apps_own(server: AuthgearTestServer) -> None:
    app = failing_store_app(server)

    @app.errorhandler(StoreDown)
    def store_down(error: StoreDown) -> tuple[str, int]:
        return "store down", 500

    response = app.test_client().get("/me", headers=bearer(server.issue_token("alice")))
    assert (response.status_code, response.text) == (500, "store down")  # not swallowed, not a 503

    app = failing_store_app(server)
    app.testing = True
    with pytest.raises(StoreDown):
        app.test_client().get("/me", headers=bearer(server.issue_token("alice")))


def test_no_loader_means_no_app_user(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"app_user": get_app_user(), "truthy": bool(current_app_user)}

    assert app.test_client().get("/me", headers=bearer(server.issue_token("x"))).get_json() == {
        "app_user": None,
        "truthy": False,
    }


def test_each_extension_serves_its_apps_with_its_own_loader(server: AuthgearTestServer) -> None:
    shared = Authgear()
    shared_calls: list[str] = []
    other_calls: list[str] = []
    apps = [build_app(server, shared_calls, ext=shared), build_app(server, shared_calls, ext=shared)]
    apps.append(build_app(server, other_calls))
    token = server.issue_token("alice", roles=["member"])
    for app in apps:
        assert app.test_client().get("/me", headers=bearer(token)).get_json()["name"] == "Alice"
    assert (shared_calls, other_calls) == (["alice", "alice"], ["alice"])


# -- async loaders ----------------------------------------------------------------------------------------------


def async_app(server: AuthgearTestServer, loader: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app).user_loader(loader)

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"name": current_app_user.name}

    return app


def test_an_async_loader_is_awaited_and_its_none_refuses_the_user(server: AuthgearTestServer) -> None:
    calls: list[str] = []

    async def load(user: AuthgearUser) -> Account | None:
        await asyncio.sleep(0)  # a real suspension, as a database driver's would be
        calls.append(user.id)
        return ACCOUNTS.get(user.id)

    client = async_app(server, load).test_client()
    assert client.get("/me", headers=bearer(server.issue_token("alice"))).get_json() == {"name": "Alice"}
    refused = client.get("/me", headers=bearer(server.issue_token("mallory")))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == UNKNOWN
    assert calls == ["alice", "mallory"]


def test_a_loader_that_returns_an_unawaited_coroutine_lets_nobody_in(server: AuthgearTestServer) -> None:
    async def lookup(user: AuthgearUser) -> Account | None:
        return None

    app = async_app(server, lambda user: lookup(user))  # not itself async: nobody would await its answer
    errors: list[BaseException] = []

    @app.errorhandler(TypeError)
    def record(error: TypeError) -> tuple[str, int]:
        errors.append(error)
        return "broken loader", 500

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, not left to warn "never awaited"
        response = app.test_client().get("/me", headers=bearer(server.issue_token("mallory")))
    assert response.status_code == 500
    assert "returned coroutine instead of its answer" in str(errors[0])


def test_an_async_generator_is_refused_as_a_loader() -> None:
    async def load(user: AuthgearUser) -> AsyncIterator[Account]:
        yield Account("x")

    with pytest.raises(ConfigurationError, match="the user loader is an async generator"):
        Authgear().user_loader(load)
    with pytest.raises(ConfigurationError, match="the user loader must be a function"):
        Authgear().user_loader(ACCOUNTS)  # type: ignore[type-var]


def test_an_async_loader_without_flasks_async_extra_is_refused_when_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def load(user: AuthgearUser) -> None:
        return None

    monkeypatch.setitem(sys.modules, "asgiref", None)  # what "not installed" looks like to an import
    with pytest.raises(ConfigurationError, match=r"flask\[async\]"):
        Authgear().user_loader(load)
