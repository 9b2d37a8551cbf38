"""The command line and machines: `token --machine` mints one, `verify` explains one, `resolve` says why the
resolver never vouches for one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from flask_authgear.cli import main
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.testing.devserver import STATE_ENV

API = "https://api.example.com/orders"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def machine(server: AuthgearTestServer, *scopes: str) -> str:
    return server.machine_token("svc", resource=API, scopes=scopes)


def test_verify_explains_a_machine_token(capsys: pytest.CaptureFixture[str], server: AuthgearTestServer) -> None:
    token = machine(server, "read:orders", "write:orders")
    code, out = run(capsys, "verify", token, "--endpoint", server.endpoint, "--audience", API)
    assert code == 0
    assert "Result: VALID, machine svc" in out
    line = next(line for line in out.splitlines() if line.split()[1:2] == ["machine"])
    assert "client svc (client credentials, not a user)" in line and API in line
    assert "scopes: read:orders, write:orders" in line and "allow_machine=True" in line


def test_verify_says_which_audience_a_machine_token_needs(
    capsys: pytest.CaptureFixture[str], server: AuthgearTestServer
) -> None:
    code, out = run(capsys, "verify", machine(server), "--endpoint", server.endpoint)
    assert code == 1
    aud = next(line for line in out.splitlines() if line.split()[1:2] == ["aud"])
    assert aud.split()[0] == "FAIL" and API in aud
    fix = "Fix: accept an audience the token carries (AUTHGEAR_AUDIENCE in the app, --audience here)"
    assert out.rstrip().endswith(fix)


@pytest.mark.parametrize("mode", ["resolver", "proxy"])
def test_verify_says_why_resolver_and_proxy_modes_refuse_a_machine(
    capsys: pytest.CaptureFixture[str], server: AuthgearTestServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask import Flask

    from flask_authgear import Authgear

    app = Flask("cli-machines")
    app.config.update(server.flask_config(mode=mode, audience=[API], trusted_proxies=["127.0.0.1"]))
    Authgear(app)
    from flask.cli import ScriptInfo

    from flask_authgear.cli import cli

    result = cli.main(
        ["verify", machine(server)],
        prog_name="flask authgear",
        standalone_mode=False,
        obj=ScriptInfo(create_app=lambda: app),
    )
    out, err = capsys.readouterr()
    assert result == 1, out + err
    assert "Result: INVALID, a machine's token is verified locally only" in out
    mode_line = next(line for line in out.splitlines() if line.split()[1:2] == ["mode"])
    assert mode_line.split()[0] == "FAIL" and f"{mode} mode" in mode_line


def test_resolve_says_why_the_resolver_never_vouches_for_a_machine(
    capsys: pytest.CaptureFixture[str], server: AuthgearTestServer
) -> None:
    code, out = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", machine(server))
    assert code == 1
    assert "(no X-Authgear-* header)" in out
    assert "Result: NOT AUTHENTICATED, this is a machine's token (client credentials)" in out
    code, out = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", machine(server), "--json")
    assert json.loads(out)["machine_token"] is True


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("dev") / "dev-server.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_authgear", "dev-server", "--state-file", str(state), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield {"state": state, **json.loads(process.stdout.readline())}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_token_command_mints_a_machine_token(
    capsys: pytest.CaptureFixture[str], dev: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_ENV, str(dev["state"]))
    code, out = run(capsys, "token", "--machine", "svc", "--resource", API, "--scope", "read:orders")
    assert code == 0, out
    token = out.strip()
    code, out = run(capsys, "verify", token, "--endpoint", dev["endpoint"], "--audience", API, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["claims"]["sub"] == "client_id_svc" and data["claims"]["aud"] == [API]
    assert data["user"]["is_machine"] is True and data["user"]["scopes"] == ["read:orders"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--machine", "svc"], "resource must be a non-empty string: the API resource's identifier"),
        (["--machine", "svc", "--resource", API, "--session"], "neither --session nor --claim"),
        (["--resource", API], "give --machine CLIENT_ID"),
        (["--machine", "svc", "--resource", "{endpoint}/api"], "prefixed by authgear endpoint"),
    ],
)
def test_token_command_refuses_incomplete_machine_options(
    capsys: pytest.CaptureFixture[str],
    dev: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    words: str,
) -> None:
    monkeypatch.setenv(STATE_ENV, str(dev["state"]))
    code, out = run(capsys, "token", *[arg.format(endpoint=dev["endpoint"]) for arg in argv])
    assert code == 2 and words in out
