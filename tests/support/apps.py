"""The smallest protected apps: one route that answers with the id of the authenticated user, and nothing else."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify

from flask_authgear.flask import Authgear, current_user, require_auth
from flask_authgear.testing import configure

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from flask_authgear.testing.server import AuthgearTestServer


def me_app(server: AuthgearTestServer, name: str, **settings: Any) -> Flask:
    """A Flask app pointed at ``server`` with ``settings``; ``GET /me`` needs a user and answers ``{"sub": id}``."""
    app = Flask(name)
    configure(app, server, **settings)
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me() -> Any:
        return jsonify(sub=current_user.id)

    return app


def whoami(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """A bare WSGI app for behind ``AuthgearMiddleware``: answers ``{"sub": id}`` of ``environ["authgear.user"]``."""
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": environ["authgear.user"].id}).encode()]
