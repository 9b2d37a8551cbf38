"""``flask authgear verify`` / ``resolve``: the same explanations, with the app's own settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask

from flask_authgear import Authgear
from flask_authgear.cli import cli
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.webhooks import WebhookEvent
from flask_authgear.webhooks.flask import Webhooks
from tests.support.app_server import AppServer


def make_app(server: AuthgearTestServer, **settings: object) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app, **settings)
    return app


def test_verify_uses_the_extension_settings(server):
    app = make_app(server, audience=["https://api.example.com"])
    runner = app.test_cli_runner()
    token = server.issue_token("alice")
    result = runner.invoke(cli, ["verify", token])
    assert result.exit_code == 1  # the app accepts only the API audience, given as a keyword override
    assert "https://api.example.com" in result.output and "FAIL  aud" in result.output
    good = server.issue_token("alice", aud=["https://api.example.com"])
    result = runner.invoke(cli, ["verify", good])
    assert result.exit_code == 0, result.output
    assert "Result: VALID, user alice" in result.output


def test_verify_without_the_extension_reads_the_config(server):
    app = Flask(__name__)
    app.config.update(server.flask_config())
    result = app.test_cli_runner().invoke(cli, ["verify", server.issue_token(expires_in=-120), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"] == "expired"


def test_verify_with_bad_config_is_a_usage_error(server):
    app = Flask(__name__)
    app.config["AUTHGEAR_ENDPOINT"] = "ftp://example.com"
    result = app.test_cli_runner().invoke(cli, ["verify", "tok"])
    assert result.exit_code == 2
    assert "bad setting: AUTHGEAR_ENDPOINT must be an absolute" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_resolve_uses_the_app_settings(server):
    app = make_app(server)
    runner = app.test_cli_runner()
    session = server.create_session("carol", roles=["ops"])
    result = runner.invoke(cli, ["resolve", "--cookie", session.cookie])
    assert result.exit_code == 0, result.output
    assert "Result: AUTHENTICATED, user carol (roles: ops)" in result.output
    assert runner.invoke(cli, ["resolve"]).exit_code == 2
    server.fail("resolver", "500")
    try:
        failed = runner.invoke(cli, ["resolve", "--token", "t"])
    finally:
        server.heal()
    assert failed.exit_code == 2 and "answered HTTP 500" in failed.output


def test_health_loads_the_keys_and_reports_readiness(server):
    app = make_app(server)
    result = app.test_cli_runner().invoke(cli, ["health"])
    assert result.exit_code == 0, result.output
    health = json.loads(result.output)
    assert health["ready"] is True and health["jwks"]["keys"] == 1 and health["last_error"] is None
    age = health["jwks"]["age_seconds"]
    assert 0 <= age < 60 and age == round(age, 1)  # rounded: a tenth of a second, not a float's 17 digits
    assert f'"age_seconds": {age},' in result.output


def test_health_of_an_unreachable_authgear_exits_one(server):
    with AuthgearTestServer() as gone:
        config = gone.flask_config()
    app = Flask(__name__)
    app.config.update(config)  # no extension: the command builds a verifier from the config
    result = app.test_cli_runner().invoke(cli, ["health"])
    assert result.exit_code == 1
    health = json.loads(result.output)
    assert health["ready"] is False and "failed: connection refused" in health["last_error"]


def test_health_of_an_app_whose_endpoint_is_not_the_issuer_names_both_and_the_setting(server):
    app = Flask(__name__)
    endpoint = server.endpoint.replace("127.0.0.1", "localhost")  # the server calls itself 127.0.0.1
    app.config["AUTHGEAR_ENDPOINT"] = endpoint
    result = app.test_cli_runner().invoke(cli, ["health"])
    assert result.exit_code == 1
    error = json.loads(result.output)["last_error"]
    assert f"names the issuer '{server.endpoint}', not the configured '{endpoint}'" in error
    assert "set AUTHGEAR_ISSUER and AUTHGEAR_AUDIENCE to it" in error


def test_flask_command_line_finds_the_group_through_the_entry_point(server, tmp_path: Path):
    (tmp_path / "myapp.py").write_text(
        textwrap.dedent(
            f"""
            from flask import Flask
            from flask_authgear import Authgear

            app = Flask(__name__)
            app.config["AUTHGEAR_ENDPOINT"] = "{server.endpoint}"
            Authgear(app)
            """
        )
    )
    flask = Path(sys.executable).parent / "flask"
    env = {**os.environ, "FLASK_APP": "myapp:app", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(flask), "authgear", "verify", server.issue_token("dora")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Result: VALID, user dora" in result.stdout


def test_flask_authgear_offers_every_command_of_the_standalone_line():
    app = Flask(__name__)
    result = app.test_cli_runner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("dev-server", "token", "event", "verify", "resolve", "health"):
        assert f"  {command} " in result.output, command


def test_token_checks_the_app_endpoint_against_the_dev_server(server, tmp_path: Path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "secret": "s"}))
    app = make_app(server)  # the app talks to another Authgear than the recorded dev server
    result = app.test_cli_runner().invoke(cli, ["token", "--state-file", str(state)])
    assert result.exit_code == 2
    assert f"runs at http://127.0.0.1:1, not {server.endpoint}" in result.output


def test_verify_options_override_the_app_settings(server):
    app = make_app(server, audience=["https://api.example.com"])
    token = server.issue_token("alice")  # its aud is the endpoint, which this app does not accept
    result = app.test_cli_runner().invoke(cli, ["verify", token, "--audience", server.endpoint])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("environment", [None, "whsec-of-another-app"], ids=["no-variable", "another-variable"])
def test_event_signs_with_the_app_webhook_secret(server, monkeypatch, environment):
    """The app's setting signs, read as the app reads it: an AUTHGEAR_WEBHOOK_SECRET it overrides does not."""
    if environment is None:
        monkeypatch.delenv("AUTHGEAR_WEBHOOK_SECRET", raising=False)
    else:
        monkeypatch.setenv("AUTHGEAR_WEBHOOK_SECRET", environment)
    app = make_app(server, webhook_secret=["whsec-new", "whsec-old"])
    seen: list[WebhookEvent] = []
    Webhooks(app, "/hook").on("user.created")(seen.append)
    with AppServer(app) as served:
        url = f"http://127.0.0.1:{served.port}/hook"
        result = app.test_cli_runner().invoke(cli, ["event", "user.created", "--to", url, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == 200
    assert answer["signed_with"] == "the first of the 2 secrets in the app's webhook_secret setting"
    assert [e.type for e in seen] == ["user.created"]


def test_event_without_an_app_webhook_secret_is_a_clear_error(server, monkeypatch):
    monkeypatch.delenv("AUTHGEAR_WEBHOOK_SECRET", raising=False)
    app = make_app(server)
    result = app.test_cli_runner().invoke(cli, ["event", "user.created", "--to", "http://127.0.0.1:1/hook"])
    assert result.exit_code == 2
    assert "no webhook secret is configured: set AUTHGEAR_WEBHOOK_SECRET" in result.output
