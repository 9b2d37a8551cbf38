"""error_response: the default answer, for an app's own ``@app.errorhandler(AuthgearError)`` to add to."""

from __future__ import annotations

import asyncio

from flask import Flask, Response

from flask_authgear import Authgear, AuthgearError, error_response, require_auth
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer


def test_a_handler_can_wrap_the_default_answer(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config(), AUTHGEAR_REALM="shop")
    Authgear(app)

    @app.errorhandler(AuthgearError)
    def with_request_id(error: AuthgearError) -> Response:
        response = error_response(error)
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
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="shop", error="invalid_token"')
    assert response.get_json()["error"] == "invalid_token"


def test_an_async_error_handler_is_awaited(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    handled: list[str | None] = []

    @app.errorhandler(AuthgearError)
    async def with_request_id(error: AuthgearError) -> Response:
        await asyncio.sleep(0)
        handled.append(error.error)
        response = error_response(error)
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


def test_an_app_without_the_extension_answers_in_the_default_realm() -> None:
    app = Flask(__name__)

    @app.get("/")
    def refuse() -> Response:
        return error_response(AuthgearError())

    response = app.test_client().get("/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authgear", error="invalid_token"')
