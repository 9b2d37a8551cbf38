"""An example Flask API protected by flask-authgear.

Routes:

* ``GET /public``  anyone
* ``GET /me``      an authenticated user; answers with who they are
* ``GET /admin``   an authenticated user with the ``admin`` role
* ``GET /hello``   anyone, greeted by name when signed in (invalid credentials are still refused)
* ``GET /staff/*`` a blueprint whose every view needs the ``staff`` role
* ``GET /health``  the verifier's readiness information (JWKS freshness, cache counters, last error)

Run it against your Authgear project (or ``flask-authgear dev-server``)::

    AUTHGEAR_ENDPOINT=https://myapp.authgear.cloud python examples/flask_api.py --port 5000

Every ``AUTHGEAR_*`` environment variable that names a setting is one (``AUTHGEAR_MODE=resolver`` ...); other
Authgear tools' variables (``AUTHGEAR_CLIENT_ID`` ...) are ignored.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask

from flask_authgear import Authgear, AuthgearUser, current_user, require_auth


def user_json(user: AuthgearUser) -> dict[str, Any]:
    """What the API tells a client about itself."""
    return user.to_dict()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``config`` (``AUTHGEAR_*`` keys); a setting it lacks comes from the ``AUTHGEAR_*``
    environment variables, as the extension reads them."""
    app = Flask(__name__)
    app.config.update(config or {})
    auth = Authgear(app)

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"message": "Anyone can read this."}

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user": user_json(current_user)}

    @app.get("/admin")
    @require_auth(roles=["admin"])
    def admin() -> dict[str, Any]:
        return {"message": f"Welcome to the admin area, {current_user.id}."}

    @app.get("/hello")
    @require_auth(optional=True)
    def hello() -> dict[str, Any]:
        # current_user is a proxy, never None: test its truth value.
        name = current_user.id if current_user else "stranger"
        return {"message": f"Hello, {name}!"}

    # Every view of this blueprint needs the staff role; no decorator to forget on a new view.
    staff = auth.protect(Blueprint("staff", __name__, url_prefix="/staff"), roles=["staff"])

    @staff.get("/rota")
    def rota() -> dict[str, Any]:
        return {"rota": [], "for": current_user.id}

    app.register_blueprint(staff)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return auth.verifier.health()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    create_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
