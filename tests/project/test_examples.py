"""The examples in ``examples/`` work as documented: in process, and run as scripts over real HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from werkzeug.test import Client

from flask_authgear.testing import AuthgearClient, AuthgearTestServer
from tests.support.auth import bearer
from tests.support.examples import EXAMPLES, SCRIPTS, load_example, run_example

REALM = 'Bearer realm="authgear"'


flask_api = load_example("flask_api")
wsgi_app = load_example("wsgi_app")


# -- examples/flask_api.py ------------------------------------------------------------------------------------


def test_flask_api_routes(server: AuthgearTestServer) -> None:
    client = flask_api.create_app(server.flask_config()).test_client()
    viewer = bearer(server.issue_token("alice", roles=["viewer"], amr=["pwd", "otp"], auth_time=1_700_000_000))
    admin = bearer(server.issue_token("bob", roles=["admin"]))

    assert client.get("/public").get_json() == {"message": "Anyone can read this."}

    refused = client.get("/me")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == REALM
    assert client.get("/me", headers=viewer).get_json() == {
        "user": {
            "id": "alice",
            "roles": ["viewer"],
            "is_verified": True,
            "is_anonymous": False,
            "can_reauthenticate": True,
            "amr": ["pwd", "otp"],
            "authenticated_at": "2023-11-14T22:13:20+00:00",
            "source": "jwt",
            "is_machine": False,
            "client_id": "test-client",
            "scopes": ["offline_access", "openid"],
        }
    }

    forbidden = client.get("/admin", headers=viewer)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"] == "insufficient_scope"
    assert client.get("/admin", headers=admin).get_json() == {"message": "Welcome to the admin area, bob."}

    assert client.get("/hello").get_json() == {"message": "Hello, stranger!"}
    assert client.get("/hello", headers=viewer).get_json() == {"message": "Hello, alice!"}
    invalid = client.get("/hello", headers=bearer("not-a-token"))
    assert invalid.status_code == 401
    assert invalid.get_json()["error"] == "invalid_token"

    health = client.get("/health").get_json()
    assert health["mode"] == "jwt"
    assert health["jwks"]["ready"] is True
    assert health["jwks"]["keys"] == 1


def test_flask_api_staff_blueprint(server: AuthgearTestServer) -> None:
    client = flask_api.create_app(server.flask_config()).test_client()
    assert client.get("/staff/rota").status_code == 401
    assert client.get("/staff/rota", headers=bearer(server.issue_token("al", roles=["admin"]))).status_code == 403
    staff = bearer(server.issue_token("al", roles=["staff"]))
    assert client.get("/staff/rota", headers=staff).get_json() == {"rota": [], "for": "al"}


def test_flask_api_reads_the_environment(server: AuthgearTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AUTHGEAR_REALM", "from-env")
    client = flask_api.create_app().test_client()
    assert client.get("/me").headers["WWW-Authenticate"] == 'Bearer realm="from-env"'
    assert client.get("/me", headers=bearer(server.issue_token("env"))).get_json()["user"]["id"] == "env"


def test_flask_api_apps_are_independent(server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as other:
        first = flask_api.create_app(server.flask_config()).test_client()
        second = flask_api.create_app(other.flask_config()).test_client()
        assert first.get("/me", headers=bearer(server.issue_token("a"))).status_code == 200
        assert second.get("/me", headers=bearer(server.issue_token("a"))).status_code == 401
        assert second.get("/me", headers=bearer(other.issue_token("b"))).status_code == 200


# -- examples/wsgi_app.py -------------------------------------------------------------------------------------


def test_wsgi_app_routes(server: AuthgearTestServer) -> None:
    client = Client(wsgi_app.create_app(**server.settings()))
    token = bearer(server.issue_token("carol", roles=["b", "a"]))
    assert client.get("/").json == {"message": "Hello, stranger!"}
    assert client.get("/", headers=token).json == {"message": "Hello, carol!"}
    refused = client.get("/api/me")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == REALM
    assert client.get("/api/me", headers=bearer("bad")).status_code == 401
    assert client.get("/api/me", headers=token).json == {"id": "carol", "roles": ["a", "b"]}
    assert client.get("/nowhere").status_code == 404


def test_wsgi_app_protect_override(server: AuthgearTestServer) -> None:
    client = Client(wsgi_app.create_app(protect=["/"], public=["/api"], **server.settings()))
    assert client.get("/").status_code == 401
    assert client.get("/api/me").status_code == 404  # not refused by the middleware: the app has no user for it


# -- run as scripts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "protected"), SCRIPTS)
def test_examples_run_as_scripts(server: AuthgearTestServer, script: str, protected: str) -> None:
    with run_example(script, protected, {"AUTHGEAR_ENDPOINT": server.endpoint}) as base:
        refused = requests.get(base + protected, timeout=5)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == REALM
        allowed = requests.get(base + protected, headers=bearer(server.issue_token("script-user")), timeout=5)
        assert allowed.status_code == 200
        assert "script-user" in allowed.text


def test_the_m2m_example_round_trip() -> None:
    """``python examples/m2m_api.py --demo``: a token by client credentials from the local server, then the API."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "m2m_api.py"), "--demo"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split(" {")[0] for line in done.stdout.splitlines()]
    assert lines == [
        "token with scopes read:orders",
        "  GET /whoami -> 200",
        "  GET /orders -> 200",
        "  POST /orders -> 403",
        "  GET /me -> 403",
        "token with scopes read:orders write:orders",
        "  GET /whoami -> 200",
        "  GET /orders -> 200",
        "  POST /orders -> 201",
        "  GET /me -> 403",
    ]
    assert '"scope": "read:orders write:orders"' in done.stdout
    assert "a machine-to-machine token is not enough" in done.stdout


def test_the_m2m_example_with_the_test_client(authgear_server: AuthgearTestServer) -> None:
    module = load_example("m2m_api")
    app = module.create_app(authgear_server.flask_config(), module.DEMO_RESOURCE)
    app.test_client_class = AuthgearClient
    machine = app.test_client(machine="nightly-job", scopes=["read:orders", "write:orders"])
    assert machine.post("/orders").get_json() == {"id": 1, "by": "nightly-job"}
    assert machine.get("/orders").get_json() == {"orders": [{"id": 1, "by": "nightly-job"}]}
    assert machine.get("/me").status_code == 403
    reader = app.test_client(machine="reader", scopes=["read:orders"])
    assert reader.post("/orders").status_code == 403
    person = app.test_client(user="alice")
    assert person.get("/me").get_json() == {"user": "alice"}
    assert person.get("/orders").status_code == 403
    assert app.test_client(user="bob", scope="read:orders").get("/orders").status_code == 200
