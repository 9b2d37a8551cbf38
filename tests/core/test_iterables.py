"""Every public parameter that takes a list takes any iterable, and reads it once: an iterator is never emptied by
a check and then used empty (all roles lost, an MFA requirement dropped, a path left unprotected)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask

from flask_authgear import Authgear, AuthgearMiddleware, Settings, require_auth
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer

ONE_SHOT: list[Any] = [
    pytest.param(lambda values: iter(values), id="iterator"),
    pytest.param(lambda values: (v for v in values), id="generator"),
    pytest.param(lambda values: map(str, values), id="map"),
]

pytestmark = pytest.mark.usefixtures("reset_server")


@pytest.mark.parametrize("once", ONE_SHOT)
def test_require_auth_roles(server: AuthgearTestServer, once: Callable[[list[str]], Iterable[str]]) -> None:
    app = Flask(__name__)
    app.config.update({f"AUTHGEAR_{k.upper()}": v for k, v in server.settings().items()})
    Authgear(app)
    app.add_url_rule("/any", "any", require_auth(roles=once(["admin", "editor"]))(lambda: "ok"))
    app.add_url_rule("/all", "all", require_auth(all_roles=once(["admin", "editor"]))(lambda: "ok"))
    client = app.test_client()
    editor = bearer(server.issue_token("ed", roles=["editor"]))
    both = bearer(server.issue_token("bo", roles=["admin", "editor"]))
    assert client.get("/any", headers=editor).status_code == 200
    assert client.get("/all", headers=editor).status_code == 403
    assert client.get("/all", headers=both).status_code == 200


@pytest.mark.parametrize("once", ONE_SHOT)
def test_middleware_protect_prefixes(server: AuthgearTestServer, once: Callable[[list[str]], Iterable[str]]) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    from werkzeug.test import Client

    client = Client(AuthgearMiddleware(app, protect=once(["/api", "/admin"]), **server.settings()))
    assert client.get("/api/x").status_code == 401
    assert client.get("/admin").status_code == 401
    assert client.get("/public").status_code == 200


@pytest.mark.parametrize("once", ONE_SHOT)
def test_settings_lists(server: AuthgearTestServer, once: Callable[[list[str]], Iterable[str]]) -> None:
    settings = Settings(**server.settings(algorithms=once(["RS256", "ES256"])))
    assert settings.algorithms == ("RS256", "ES256")


@pytest.mark.parametrize("once", ONE_SHOT)
def test_the_test_kits_roles_and_amr(server: AuthgearTestServer, once: Callable[[list[str]], Iterable[str]]) -> None:
    claims = server.claims_for("kit", roles=once(["admin"]), amr=once(["pwd", "mfa"]))
    assert (claims["https://authgear.com/claims/user/roles"], claims["amr"]) == (["admin"], ["pwd", "mfa"])
    session = server.create_session("kit", roles=once(["admin"]), amr=once(["pwd"]))
    assert (session.roles, tuple(session.amr)) == (("admin",), ("pwd",))
