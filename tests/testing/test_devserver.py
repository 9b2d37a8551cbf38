"""``flask-authgear dev-server`` and ``token`` as real processes: the console script, the state file, the mint route."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from flask_authgear import Settings, Verifier
from flask_authgear.cli import main
from flask_authgear.testing.devserver import SECRET_HEADER, STATE_ENV, DevServer
from flask_authgear.webhooks import WebhookAnswer, WebhookEvent
from flask_authgear.webhooks.flask import Webhooks
from tests.support.app_server import AppServer
from tests.support.auth import bearer_request
from tests.support.net import free_port

SCRIPT = shutil.which("flask-authgear", path=str(Path(sys.executable).parent))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    assert SCRIPT is not None, "the flask-authgear console script is not installed"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=60, env=env)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """The same command line in this process (faster than a new interpreter per call)."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        if env is not None and STATE_ENV in env:
            monkeypatch.setenv(STATE_ENV, env[STATE_ENV])
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dev server started the way a developer starts it, stopped with SIGTERM at the end."""
    state = tmp_path_factory.mktemp("dev") / "state" / "dev-server.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_authgear", "dev-server", "--state-file", str(state), "--json", "--sub", "dev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        yield {"process": process, "state": state, **first}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def env_for(dev: dict[str, Any]) -> dict[str, str]:
    return {**os.environ, STATE_ENV: str(dev["state"])}


def test_dev_server_prints_a_ready_token_that_verifies(dev):
    assert dev["endpoint"].startswith("http://127.0.0.1:")
    result = cli("verify", dev["token"], "--endpoint", dev["endpoint"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Result: VALID, user dev" in result.stdout


def test_state_file_is_private(dev):
    state = Path(dev["state"])
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert json.loads(state.read_text())["endpoint"] == dev["endpoint"]


def test_token_command_mints_tokens_with_roles_and_claims(dev, run):
    minted = cli(
        "token", "--sub", "alice", "--role", "admin", "--role", "ops", "--claim", "tenant=acme", env=env_for(dev)
    )
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    result = run("verify", token, "--endpoint", dev["endpoint"], "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 0
    assert data["user"]["id"] == "alice" and data["user"]["roles"] == ["admin", "ops"]
    assert data["claims"]["tenant"] == "acme"


def test_token_command_mints_an_expired_token(dev, run):
    minted = run("token", "--expires-in", "-300", "--state-file", str(dev["state"]))
    assert minted.returncode == 0, minted.stderr
    result = run("verify", minted.stdout.strip(), "--endpoint", dev["endpoint"])
    assert result.returncode == 1
    assert "5 minutes ago (60s clock skew allowed): the token has expired" in result.stdout


def test_token_command_creates_a_resolver_session(dev, run):
    minted = run("token", "--session", "--sub", "bob", "--role", "editor", "--json", env=env_for(dev))
    assert minted.returncode == 0, minted.stderr
    session = json.loads(minted.stdout)
    by_token = run("resolve", "--endpoint", dev["endpoint"], "--token", session["token"])
    assert by_token.returncode == 0
    assert "Result: AUTHENTICATED, user bob (roles: editor)" in by_token.stdout
    by_cookie = run("resolve", "--endpoint", dev["endpoint"], "--cookie", session["cookie"])
    assert by_cookie.returncode == 0


def test_token_command_mints_the_users_flags_and_amr(dev, run):
    minted = run("token", "--sub", "carol", "--unverified", "--amr", "pwd", "--amr", "otp", env=env_for(dev))
    assert minted.returncode == 0, minted.stderr
    user = json.loads(run("verify", minted.stdout.strip(), "--endpoint", dev["endpoint"], "--json").stdout)["user"]
    assert (user["id"], user["is_verified"], user["is_anonymous"], user["amr"]) == (
        "carol",
        False,
        False,
        ["pwd", "otp"],
    )
    session = json.loads(run("token", "--session", "--anonymous", "--json", env=env_for(dev)).stdout)
    resolved = run("resolve", "--endpoint", dev["endpoint"], "--token", session["token"], "--json")
    assert json.loads(resolved.stdout)["user"]["is_anonymous"] is True


def test_token_command_checks_the_endpoint_against_the_state_file(dev, run):
    result = run("token", "--endpoint", "http://127.0.0.1:1", env=env_for(dev))
    assert result.returncode == 2
    assert f"runs at {dev['endpoint']}, not http://127.0.0.1:1" in result.stderr


def test_token_command_refuses_bad_claims(dev, run):
    result = run("token", "--claim", "sub=mallory", env=env_for(dev))
    assert result.returncode == 2
    assert "claims must not set sub" in result.stderr
    assert "Traceback" not in result.stderr


def test_mint_route_needs_the_secret(dev):
    url = dev["endpoint"] + "/_dev/token"
    assert requests.post(url, json={"sub": "x"}, timeout=5).status_code == 403
    assert requests.post(url, json={"sub": "x"}, headers={SECRET_HEADER: "guess"}, timeout=5).status_code == 403
    secret = json.loads(Path(dev["state"]).read_text())["secret"]
    assert requests.get(url, headers={SECRET_HEADER: secret}, timeout=5).status_code == 405
    bad = requests.post(url, json={"sub": "x", "roles": "admin"}, headers={SECRET_HEADER: secret}, timeout=5)
    assert bad.status_code == 400 and bad.json() == {"error": "roles must be a list of strings"}
    ok = requests.post(url, json={"sub": "x"}, headers={SECRET_HEADER: secret}, timeout=5)
    assert ok.status_code == 200 and ok.json()["token"].count(".") == 2


def test_no_state_file_is_a_clear_error(tmp_path, run):
    result = run("token", "--state-file", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "no running dev server found" in result.stderr


def test_a_stale_state_file_is_a_clear_error(tmp_path, run):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "secret": "s"}))
    result = run("token", "--state-file", str(state))
    assert result.returncode == 2
    assert "does not answer at http://127.0.0.1:1; is it still running?" in result.stderr


def test_sigterm_stops_the_server_and_removes_the_state_file(tmp_path):
    state = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_authgear", "dev-server", "--state-file", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert banner.startswith("Authgear dev server running at http://127.0.0.1:")
    endpoint = banner.split()[-1]
    assert state.exists()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert not state.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint + "/oauth2/jwks", timeout=2)


def test_dev_server_binds_loopback_only(run):
    with pytest.raises(ValueError, match="loopback"):
        DevServer("0.0.0.0")
    result = run("dev-server", "--host", "192.0.2.1")
    assert result.returncode == 2 and "binds only loopback addresses" in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--expires-in", "inf"), "expires_in must be a number of seconds"),
        (("--expires-in", "nan"), "expires_in must be a number of seconds"),
        (("--expires-in", "1e15"), "expires_in must be a number of seconds"),
        (("--role", ""), "roles must be a list of strings"),
    ],
    ids=["infinite", "nan", "huge", "empty-role"],
)
def test_dev_server_checks_its_token_as_the_mint_route_does(run, tmp_path, option, message):
    state = tmp_path / "state.json"
    result = run("dev-server", *option, "--state-file", str(state))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not state.exists()  # refused before the server started


def test_dev_server_reports_a_busy_port(dev, run):
    port = dev["endpoint"].rsplit(":", 1)[1]
    result = run("dev-server", "--port", port, "--state-file", "/dev/null/x")
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_the_library_test_server_has_no_mint_route(authgear_server):
    response = requests.post(authgear_server.endpoint + "/_dev/token", json={}, timeout=5)
    assert response.status_code == 404


# -- the state file in a shared directory, and bad mint bodies -------------------------------------------------


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    """An in-process dev server, to write state files and call the mint route directly."""
    with DevServer() as server:
        yield server


def planted_names(state: Path) -> list[Path]:
    """The temporary names an attacker could guess: the state file's own and the old ``.<name>.<pid>.tmp``."""
    return [state, state.with_name(f".{state.name}.{os.getpid()}.tmp")]


def test_a_planted_symlink_is_replaced_not_followed(dev_server, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    state = tmp_path / "shared" / "dev-server.json"
    state.parent.mkdir()
    for name in planted_names(state):
        name.symlink_to(victim)
    dev_server.write_state(state)
    assert victim.read_text() == "untouched"
    assert not state.is_symlink()
    assert json.loads(state.read_text())["secret"] == dev_server.secret


def test_a_planted_world_writable_file_is_not_reused(dev_server, tmp_path):
    state = tmp_path / "shared" / "dev-server.json"
    state.parent.mkdir()
    for name in planted_names(state):
        name.write_text("{}")
        name.chmod(0o666)
    dev_server.write_state(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert json.loads(state.read_text())["secret"] == dev_server.secret
    assert sorted(p.name for p in state.parent.iterdir()) == sorted(p.name for p in planted_names(state))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "the body must be a JSON object", id="malformed-json"),
        pytest.param(b"", "the body must be a JSON object", id="empty"),
        pytest.param(b"[1, 2]", "the body must be a JSON object", id="array"),
        pytest.param(b'"alice"', "the body must be a JSON object", id="string"),
        pytest.param(b'{"sub": 5}', "sub must be a non-empty string", id="sub-number"),
        pytest.param(b'{"expires_in": "soon"}', None, id="expires-in-string"),
        pytest.param(b'{"expires_in": Infinity}', "the body must be a JSON object", id="expires-in-infinity"),
        pytest.param(b'{"expires_in": NaN}', "the body must be a JSON object", id="expires-in-nan"),
        pytest.param(b'{"sub": "a", "sub": "b"}', "the body must be a JSON object", id="duplicate-member"),
        pytest.param(
            b'{"claims": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}", "the body must be a JSON object", id="deep"
        ),
        pytest.param(b'{"expires_in": 1e300}', None, id="expires-in-huge"),
        pytest.param(b'{"claims": [1]}', "claims must be a JSON object", id="claims-array"),
        pytest.param(b'{"is_verified": "yes"}', "is_verified must be true or false", id="flag-string"),
        pytest.param(b'{"claims": {"issuer": "x"}}', "claims must not set issuer", id="claims-issuer"),
        pytest.param(b'{"claims": {"client_id": "x"}}', "claims must not set client_id", id="claims-client-id"),
        pytest.param(b'{"claims": {"roles": 5}}', "claims must not set roles", id="claims-roles-number"),
        pytest.param(b'{"claims": {"auth_time": []}}', "claims must not set auth_time", id="claims-auth-time-list"),
    ],
)
def test_malformed_mint_bodies_get_400_json(dev_server, body, message):
    response = requests.post(
        dev_server.endpoint + "/_dev/token",
        data=body,
        headers={SECRET_HEADER: dev_server.secret, "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error.startswith(message) if message else error.startswith("expires_in must be a number of seconds")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"resource": "https://api.example.com"}, "client_id must be a non-empty string", id="no-client"),
        pytest.param({"client_id": "svc"}, "resource must be a non-empty string", id="no-resource"),
        pytest.param({"client_id": "svc", "resource": "{endpoint}/api"}, "prefixed by authgear", id="own-origin"),
        pytest.param(
            {"client_id": "svc", "resource": "https://api.example.com", "scopes": ["read write"]},
            "scopes must be a list of names without spaces",
            id="scope-with-space",
        ),
    ],
)
def test_malformed_machine_mint_bodies_get_400_json(dev_server, body, message):
    body = {
        name: value.format(endpoint=dev_server.endpoint) if name == "resource" else value
        for name, value in body.items()
    }
    response = requests.post(
        dev_server.endpoint + "/_dev/machine", json=body, headers={SECRET_HEADER: dev_server.secret}, timeout=5
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_state_variable_is_not_a_flask_or_library_setting():
    assert not STATE_ENV.startswith(("FLASK_", "AUTHGEAR_"))


# -- webhooks: the dev server's secret, and the oidc.jwt.pre_create hook ------------------------------------------

HOOK_SECRET = "whsec-of-the-app"


def env_without_secret(dev: dict[str, Any]) -> dict[str, str]:
    env = env_for(dev)
    env.pop("AUTHGEAR_WEBHOOK_SECRET", None)
    return env


@pytest.fixture(scope="module")
def hook_app() -> Iterator[tuple[str, list[WebhookEvent]]]:
    """An app whose ``oidc.jwt.pre_create`` handler adds a claim (and refuses mallory); yields its hook URL."""
    app = Flask(__name__)
    hooks = Webhooks(app, "/hook", secret=HOOK_SECRET)
    seen: list[WebhookEvent] = []

    @hooks.on("oidc.jwt.pre_create")
    def add_tenant(event: WebhookEvent) -> WebhookAnswer:
        seen.append(event)
        if event.payload["user"]["id"] == "mallory":
            return event.deny("Mallory is banned.", "Not allowed")
        return event.allow(jwt_claims={"tenant": "acme"})

    with AppServer(app) as served:
        yield f"http://127.0.0.1:{served.port}/hook", seen


def start_dev_server(state: Path, *args: str, secret: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """A dev server process and its first line of output; ``secret`` is its AUTHGEAR_WEBHOOK_SECRET, if any."""
    env = {k: v for k, v in os.environ.items() if k != "AUTHGEAR_WEBHOOK_SECRET"}
    if secret is not None:
        env["AUTHGEAR_WEBHOOK_SECRET"] = secret
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_authgear", "dev-server", "--state-file", str(state), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def hooked(hook_app, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A dev server started with --jwt-hook at the app and the app's webhook secret."""
    state = tmp_path_factory.mktemp("hooked") / "dev-server.json"
    url = hook_app[0]
    process, line = start_dev_server(state, "--jwt-hook", url, "--webhook-secret", HOOK_SECRET, "--json")
    try:
        yield {"state": state, **json.loads(line)}
    finally:
        stop(process)


def test_event_signs_with_the_running_dev_servers_secret(dev, tmp_path):
    app = Flask(__name__)
    hooks = Webhooks(app, "/hook", secret=dev["webhook_secret"])
    seen: list[WebhookEvent] = []
    hooks.on("user.deleted")(seen.append)
    assert json.loads(Path(dev["state"]).read_text())["webhook_secret"] == dev["webhook_secret"]
    with AppServer(app) as served:
        url = f"http://127.0.0.1:{served.port}/hook"
        result = cli("event", "user.deleted", "--to", url, env=env_without_secret(dev))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [e.type for e in seen] == ["user.deleted"]


def test_tokens_carry_the_claims_of_the_jwt_hook(hooked, hook_app, run):
    verifier = Verifier(Settings(endpoint=hooked["endpoint"]))
    try:
        first = verifier.authenticate(bearer_request(hooked["token"]))
        assert first.claims["tenant"] == "acme"
        minted = run("token", "--sub", "alice", "--role", "admin", "--state-file", str(hooked["state"]))
        assert minted.returncode == 0, minted.stderr
        alice = verifier.authenticate(bearer_request(minted.stdout.strip()))
    finally:
        verifier.close()
    assert alice.id == "alice" and alice.roles == {"admin"} and alice.claims["tenant"] == "acme"
    event = hook_app[1][-1]
    assert event.type == "oidc.jwt.pre_create" and event.payload["jwt"]["payload"]["sub"] == "alice"


def test_a_refusing_jwt_hook_is_a_clear_error_not_a_token(hooked, run):
    result = run("token", "--sub", "mallory", "--state-file", str(hooked["state"]))
    assert result.returncode == 2 and result.stdout == ""
    assert "the oidc.jwt.pre_create hook refused: Not allowed: Mallory is banned." in result.stderr
    assert "Traceback" not in result.stderr
    state = json.loads(Path(hooked["state"]).read_text())
    response = requests.post(
        hooked["endpoint"] + "/_dev/token", json={"sub": "mallory"}, headers={SECRET_HEADER: state["secret"]}, timeout=5
    )
    assert response.status_code == 502 and "pre_create hook refused" in response.json()["error"]


def test_an_unreachable_jwt_hook_still_starts_the_dev_server(tmp_path, run):
    state = tmp_path / "dev-server.json"
    url = f"http://127.0.0.1:{free_port()}/hook"
    process, banner = start_dev_server(state, "--jwt-hook", url, "--webhook-secret", HOOK_SECRET)
    try:
        assert banner.startswith("Authgear dev server running at ")
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        assert "  events are signed with the secret in --webhook-secret: your app needs it too\n" in lines
        assert HOOK_SECRET not in "".join(lines)
        assert "  no start-up token: the oidc.jwt.pre_create hook could not be reached: ConnectionError\n" in lines
        result = run("token", "--state-file", str(state))
    finally:
        stop(process)
    assert result.returncode == 2
    assert "the oidc.jwt.pre_create hook could not be reached" in result.stderr and "Traceback" not in result.stderr


def test_the_jwt_hook_has_the_projects_sync_hook_timeout(tmp_path, run):
    release = threading.Event()
    app = Flask(__name__)

    @app.post("/hook")
    def stuck() -> str:
        release.wait(30)  # answers only once the test is over
        return "{}"

    state = tmp_path / "dev-server.json"
    with AppServer(app) as served:
        url = f"http://127.0.0.1:{served.port}/hook"
        process, banner = start_dev_server(state, "--jwt-hook", url, "--sync-hook-timeout", "0.3")
        try:
            assert banner.startswith("Authgear dev server running at ")
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(4)]
            assert "  no start-up token: the oidc.jwt.pre_create hook could not be reached: ReadTimeout\n" in lines
        finally:
            release.set()
            stop(process)
    assert run("dev-server", "--sync-hook-timeout", "0").returncode == 2


def test_the_jwt_hook_must_be_an_http_url(run):
    result = run("dev-server", "--jwt-hook", "file:///etc/passwd")
    assert result.returncode == 2 and "must be an http:// or https:// URL" in result.stderr


# -- secrets are never echoed ---------------------------------------------------------------------------------

REAL, OLD = "whsec-real-5d1e9a", "whsec-old-77c0b2"


@pytest.mark.parametrize(
    ("args", "secret", "source"),
    [
        pytest.param((), f"{REAL},{OLD}", "the first of the 2 secrets in $AUTHGEAR_WEBHOOK_SECRET", id="environment"),
        pytest.param(
            ("--webhook-secret", f"{REAL}, {OLD}"), None, "the first of the 2 secrets in --webhook-secret", id="option"
        ),
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_given_webhook_secret_is_named_by_its_source_never_printed(
    tmp_path: Path, args: tuple[str, ...], secret: str | None, source: str, as_json: bool
) -> None:
    state = tmp_path / "dev-server.json"
    process, first = start_dev_server(state, *args, *(["--json"] if as_json else []), secret=secret)
    try:
        assert process.stdout is not None
        output = first
        while not as_json and not output.endswith("Press Ctrl+C to stop.\n"):
            line = process.stdout.readline()
            assert line, output  # the banner ended early
            output += line
        signing = json.loads(state.read_text())["webhook_secret"]  # the state file, readable by its owner only
    finally:
        stop(process)
    assert signing == REAL
    assert REAL not in output and OLD not in output
    if as_json:
        line = json.loads(output)
        assert line["webhook_secret_from"] == source and "webhook_secret" not in line
    else:
        assert f"  events are signed with {source}: your app needs it too\n" in output


def test_a_generated_webhook_secret_is_printed(dev: dict[str, Any]) -> None:
    assert dev["webhook_secret_from"] == "generated"
    assert dev["webhook_secret"] == json.loads(Path(dev["state"]).read_text())["webhook_secret"]
