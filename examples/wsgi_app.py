"""An example plain WSGI app (no framework) behind :class:`flask_authgear.AuthgearMiddleware`.

Routes:

* ``GET /``        anyone; greets the user by name when the request carries valid credentials
* ``GET /api/me``  protected by the middleware: it answers 401/403/503 itself, so the app always has a user

Run it::

    AUTHGEAR_ENDPOINT=https://myapp.authgear.cloud python examples/wsgi_app.py --port 5001
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import run_simple

from flask_authgear import AuthgearMiddleware, AuthgearUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The application: it reads the user the middleware stored in the environ."""
    user: AuthgearUser | None = environ.get("authgear.user")
    path = environ.get("PATH_INFO", "")
    if path == "/":
        return _json(start_response, "200 OK", {"message": f"Hello, {user.id if user else 'stranger'}!"})
    if path == "/api/me" and user is not None:
        return _json(start_response, "200 OK", {"id": user.id, "roles": sorted(user.roles)})
    return _json(start_response, "404 Not Found", {"error": "not_found"})


def create_app(**settings: Any) -> AuthgearMiddleware:
    """The app wrapped in the middleware; ``/api`` is protected unless ``protect=`` says otherwise.

    Keyword arguments are middleware settings (``endpoint=...``); the middleware reads the others from the
    ``AUTHGEAR_*`` environment variables, as every door of the library does (keywords win).
    """
    settings.setdefault("protect", ["/api"])
    return AuthgearMiddleware(app, **settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5001")))
    args = parser.parse_args()
    run_simple(args.host, args.port, create_app())


if __name__ == "__main__":
    main()
