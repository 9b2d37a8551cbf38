"""error_response, exported for handlers that wrap the library's default answer."""

from __future__ import annotations

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
