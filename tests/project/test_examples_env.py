"""The examples start in an environment that also holds other Authgear tools' ``AUTHGEAR_*`` variables."""

from __future__ import annotations

import pytest
import requests
from werkzeug.test import Client

from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer
from tests.support.examples import SCRIPTS, load_example, run_example

wsgi_app = load_example("wsgi_app")

#: What a web app that also signs users in with Authgear has in its environment.
OTHER_AUTHGEAR_VARIABLES = {"AUTHGEAR_CLIENT_ID": "x", "AUTHGEAR_CLIENT_SECRET": "y"}


@pytest.mark.parametrize(("script", "protected"), SCRIPTS)
def test_examples_start_beside_other_authgear_variables(
    server: AuthgearTestServer, script: str, protected: str
) -> None:
    env = {**OTHER_AUTHGEAR_VARIABLES, "AUTHGEAR_ENDPOINT": server.endpoint, "AUTHGEAR_REALM": "from-env"}
    with run_example(script, protected, env) as base:
        # The example's own settings are still read from the environment.
        assert requests.get(base + protected, timeout=5).headers["WWW-Authenticate"] == 'Bearer realm="from-env"'
        allowed = requests.get(base + protected, headers=bearer(server.issue_token("env-user")), timeout=5)
        assert allowed.status_code == 200
        assert "env-user" in allowed.text


def test_wsgi_app_keyword_settings_win_over_the_environment(
    server: AuthgearTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AUTHGEAR_REALM", "from-env")
    monkeypatch.setenv("AUTHGEAR_CLIENT_ID", "x")
    client = Client(wsgi_app.create_app(realm="from-keyword", protect=["/"], public=["/api"]))
    assert client.get("/").headers["WWW-Authenticate"] == 'Bearer realm="from-keyword"'
    assert client.get("/api/me").status_code == 404
