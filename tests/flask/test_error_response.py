"""error_response, exported for handlers that wrap the library's default answer."""

from __future__ import annotations

import asyncio

import pytest
from flask import Flask, Response

from flask_authgear import Authgear, AuthgearError, error_response, require_auth
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer


def test_a_handler_can_wrap_the_default_answer(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)

    @auth.error_handler
    def with_request_id(error: AuthgearError) -> Response:
        response = error_response(error, auth.settings.realm)
        response.headers["X-Request-Id"] = "r-1"
        return response

    @app.get("/me")
    @require_auth
    def me() -> str:
        return "me"

    response = app.test_client().get("/me", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert response.headers["X-Request-Id"] == "r-1"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authgear", error="invalid_token"')
    assert response.get_json()["error"] == "invalid_token"


def test_an_async_error_handler_is_awaited(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)
    handled: list[str | None] = []

    @auth.error_handler
    async def with_request_id(error: AuthgearError) -> Response:
        await asyncio.sleep(0)
        handled.append(error.error)
        response = error_response(error, auth.settings.realm)
        response.headers["X-Request-Id"] = "r-2"
        return response

    @app.get("/me")
    @require_auth
    def me() -> str:
        return "me"

    client = app.test_client()
    for headers in (bearer("not-a-token"), {}):
        response = client.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["X-Request-Id"] == "r-2"
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authgear"')
    assert handled == ["invalid_token", None]  # no error code without credentials (RFC 6750)


def test_an_error_handler_that_returns_an_unawaited_coroutine_is_an_error(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)

    async def answer(error: AuthgearError) -> Response:
        return error_response(error, auth.settings.realm)

    auth.error_handler(lambda error: answer(error))  # not itself async: nobody would await its answer

    @app.get("/me")
    @require_auth
    def me() -> str:
        return "me"

    assert app.test_client().get("/me", headers=bearer("not-a-token")).status_code == 500
    app.testing = True  # now Flask lets the error through, to show which one it was
    with pytest.raises(TypeError, match="the error handler returned coroutine"):
        app.test_client().get("/me", headers=bearer("not-a-token"))
