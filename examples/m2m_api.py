"""An API for people and for machines: user routes, and machine routes guarded by scopes.

Machines (backend services, cron jobs, devices) get their access token from Authgear by the client-credentials
grant, for an API resource registered in the portal (its identifier is the token's ``aud``) and with the scopes
the application was granted. Routes:

* ``GET /me``          a signed-in user only (a machine is refused with 403)
* ``GET /orders``      a machine or a user whose token carries ``read:orders``
* ``POST /orders``     a machine whose token carries ``read:orders`` and ``write:orders``
* ``GET /whoami``      anyone authenticated, person or machine, described

Serve it against your Authgear project (``API_RESOURCE`` is the API resource's identifier)::

    AUTHGEAR_ENDPOINT=https://myapp.authgear.cloud API_RESOURCE=https://api.example.com \\
        python examples/m2m_api.py --port 5000

or run ``python examples/m2m_api.py --demo``: it starts the local Authgear-compatible server, registers a machine
client there, serves the API, gets a token by client credentials and calls the API with it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import make_server

from flask_authgear import Authgear, current_user, require_auth

#: The demo's API resource identifier: any https URI that does not begin with the Authgear endpoint.
DEMO_RESOURCE = "https://api.example.com/orders"


def create_app(config: Mapping[str, Any] | None = None, resource: str | None = None) -> Flask:
    """Build the app from ``config`` (``AUTHGEAR_*`` keys; the environment when None) for the API ``resource``."""
    app = Flask(__name__)
    if config is None:
        config = {key: value for key, value in os.environ.items() if key.startswith("AUTHGEAR_")}
    app.config.update(config)
    resource = resource or os.environ["API_RESOURCE"]
    # User tokens carry the Authgear endpoint as aud, machine tokens the API resource: accept both.
    app.config["AUTHGEAR_AUDIENCE"] = [app.config["AUTHGEAR_ENDPOINT"].rstrip("/"), resource]
    Authgear(app)
    orders: list[dict[str, Any]] = []

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user": current_user.id}

    @app.get("/orders")
    @require_auth(scopes=["read:orders"], allow_machine=True)
    def list_orders() -> dict[str, Any]:
        return {"orders": orders}

    @app.post("/orders")
    @require_auth(scopes=["read:orders", "write:orders"], allow_machine=True)
    def add_order() -> tuple[dict[str, Any], int]:
        order = {"id": len(orders) + 1, "by": current_user.client_id}
        orders.append(order)
        return order, 201

    @app.get("/whoami")
    @require_auth(allow_machine=True)
    def whoami() -> dict[str, Any]:
        if current_user.is_machine:
            return {"machine": current_user.client_id, "scopes": sorted(current_user.scopes)}
        return {"user": current_user.id}

    return app


def client_credentials_token(
    endpoint: str, client_id: str, client_secret: str, resource: str, scopes: list[str] | None = None
) -> str:
    """What a machine does: ask Authgear's token endpoint for an access token to ``resource``."""
    form = {"grant_type": "client_credentials", "resource": resource}
    if scopes:
        form["scope"] = " ".join(scopes)
    answer = requests.post(f"{endpoint}/oauth2/token", data=form, auth=(client_id, client_secret), timeout=10)
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def demo() -> None:
    """The whole round trip on this machine: the local Authgear, a machine client, the API, the calls."""
    from flask_authgear.testing import AuthgearTestServer

    with AuthgearTestServer() as authgear:
        machine = authgear.register_machine_client(
            "orders-sync", resources={DEMO_RESOURCE: ["read:orders", "write:orders"]}
        )
        app = create_app({"AUTHGEAR_ENDPOINT": authgear.endpoint}, DEMO_RESOURCE)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log between the demo's lines
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        api = f"http://127.0.0.1:{server.port}"
        try:
            for scopes in (["read:orders"], ["read:orders", "write:orders"]):
                token = client_credentials_token(
                    authgear.endpoint, machine.client_id, machine.client_secret, DEMO_RESOURCE, scopes
                )
                headers = {"Authorization": f"Bearer {token}"}
                print(f"token with scopes {' '.join(scopes)}")
                for method, path in (("GET", "/whoami"), ("GET", "/orders"), ("POST", "/orders"), ("GET", "/me")):
                    answer = requests.request(method, api + path, headers=headers, timeout=10)
                    print(f"  {method} {path} -> {answer.status_code} {answer.text.strip()}")
        finally:
            server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run the round trip against the local server")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    if args.demo:
        demo()
    else:
        create_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
