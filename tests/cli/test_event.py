"""``flask-authgear event``: one signed, Authgear-shaped webhook event sent to a running app, and its answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask

from flask_authgear.cli import main
from flask_authgear.testing.devserver import STATE_ENV
from flask_authgear.webhooks import WebhookEvent
from flask_authgear.webhooks.flask import Webhooks
from tests.support.app_server import AppServer
from tests.support.net import free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SECRET = "whsec-shared-with-the-app"


@pytest.fixture
def hook_app() -> Iterator[tuple[str, list[WebhookEvent]]]:
    """A Flask app with ``Webhooks`` at ``/hook`` on a real server; yields its URL and the events it handled."""
    app = Flask(__name__)
    hooks = Webhooks(app, "/hook", secret=SECRET)
    seen: list[WebhookEvent] = []

    @hooks.on("*")  # every non-blocking type, as a hook subscribed to "*" receives them
    def record(event: WebhookEvent) -> None:
        seen.append(event)

    with AppServer(app) as served:
        yield f"http://127.0.0.1:{served.port}/hook", seen


def test_event_delivers_a_signed_sample_event(capsys, hook_app):
    url, seen = hook_app
    code, out, err = run(capsys, "event", "user.created", "--to", url, "--secret", SECRET)
    assert code == 0, out + err
    assert out.splitlines()[0].endswith(": HTTP 200")
    assert [e.type for e in seen] == ["user.created"]
    assert seen[0].payload["user"]["id"] == "user-1" and seen[0].context["user_id"] == "user-1"


def test_event_with_a_wrong_secret_exits_1_and_shows_the_401(capsys, hook_app):
    url, seen = hook_app
    code, out, err = run(capsys, "event", "user.created", "--to", url, "--secret", "wrong")
    assert code == 1
    assert out.splitlines()[0].endswith(": HTTP 401")
    assert '"error": "invalid_signature"' in out and "Traceback" not in err
    code, out, _ = run(capsys, "event", "user.created", "--to", url, "--secret", "wrong", "--json")
    answer = json.loads(out)
    assert code == 1 and answer["status"] == 401 and answer["body"]["error"] == "invalid_signature"
    assert seen == []


def test_event_reads_the_secret_from_the_environment(capsys, hook_app, monkeypatch):
    url, seen = hook_app
    monkeypatch.setenv("AUTHGEAR_WEBHOOK_SECRET", f"{SECRET},an-older-one")
    code, out, err = run(capsys, "event", "identity.email.added", "--to", url)
    assert code == 0, out
    assert seen[0].payload["identity"]["type"] == "login_id"
    assert out.splitlines()[1] == "signed with the first of the 2 secrets in $AUTHGEAR_WEBHOOK_SECRET"
    assert SECRET not in out + err and "an-older-one" not in out + err


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_event_reads_a_secret_list_from_the_option_as_everywhere_and_names_it_without_its_value(
    capsys, hook_app, as_json
):
    url, seen = hook_app
    options = ["--json"] if as_json else []
    code, out, err = run(capsys, "event", "user.created", "--to", url, "--secret", f"{SECRET}, an-older-one", *options)
    assert code == 0, out + err
    assert [e.type for e in seen] == ["user.created"]  # signed with the first secret, which the app holds
    source = "the first of the 2 secrets in --secret"
    if as_json:
        assert json.loads(out)["signed_with"] == source
    else:
        assert out.splitlines()[1] == f"signed with {source}"
    assert SECRET not in out + err and "an-older-one" not in out + err


def test_event_payload_context_and_id_override_the_sample(capsys, hook_app, tmp_path):
    url, seen = hook_app
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"user": {"id": "alice"}}))
    args = ["--to", url, "--secret", SECRET, "--payload", f"@{payload}", "--context", '{"triggered_by": "admin_api"}']
    first = run(capsys, "event", "user.created", *args, "--id", "evt-1", "--json")
    replay = run(capsys, "event", "user.created", *args, "--id", "evt-1", "--json")
    assert first[0] == replay[0] == 0
    assert json.loads(first[1])["id"] == json.loads(replay[1])["id"] == "evt-1"
    assert len(seen) == 1  # the replay carried the same id: the app handled it once
    code, out, _ = run(capsys, "event", "user.created", *args, "--json")
    assert code == 0 and len(seen) == 2 and seen[1].seq > seen[0].seq  # as Authgear numbers a project's events
    assert json.loads(out)["id"] == seen[1].id == f"{seen[1].seq:016x}"  # and as Authgear names them
    assert seen[0].id == "evt-1" and seen[0].payload == {"user": {"id": "alice"}}
    assert seen[0].context["triggered_by"] == "admin_api" and seen[0].context["user_id"] == "alice"


def test_event_with_an_unknown_type_is_a_usage_error_listing_the_known_ones(capsys):
    code, _, err = run(capsys, "event", "user.exploded", "--to", "http://127.0.0.1:1/", "--secret", SECRET)
    assert code == 2
    assert "'user.exploded' is not an event type Authgear sends" in err and "user.created, " in err
    code, _, err = run(capsys, "event", "user.create", "--to", "http://127.0.0.1:1/", "--secret", SECRET)
    assert code == 2 and "did you mean 'user.created'?" in err


def test_event_sends_every_type_authgear_sends(capsys, hook_app):
    url, seen = hook_app
    for event_type in ("user.reauthenticated", "usage.alert.triggered", "identity.phone.unverified"):
        code, out, _ = run(capsys, "event", event_type, "--to", url, "--secret", SECRET)
        assert code == 0, out
    assert [e.type for e in seen] == ["user.reauthenticated", "usage.alert.triggered", "identity.phone.unverified"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        pytest.param("--payload", "[1]", "must be a JSON object", id="payload-array"),
        pytest.param("--payload", "{nope", "not JSON", id="payload-malformed"),
        pytest.param("--payload", "@/nonexistent/payload.json", "cannot read /nonexistent/payload.json", id="file"),
        pytest.param("--context", '"text"', "must be a JSON object", id="context-string"),
        pytest.param("--to", "ftp://127.0.0.1/", "must be an http:// or https:// URL", id="url-scheme"),
    ],
)
def test_event_with_bad_options_is_a_usage_error(capsys, option, value, message):
    argv = ["event", "user.created", "--to", "http://127.0.0.1:1/", "--secret", SECRET, option, value]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_event_to_an_unreachable_url_exits_1_with_a_clear_message(capsys):
    url = f"http://127.0.0.1:{free_port()}/hook"
    code, out, err = run(capsys, "event", "user.created", "--to", url, "--secret", SECRET)
    assert code == 1
    assert err == f"flask-authgear: cannot reach {url}: the connection failed\n" and out == ""


def test_event_without_any_secret_says_where_to_find_one(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("AUTHGEAR_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "no-dev-server.json"))
    code, _, err = run(capsys, "event", "user.created", "--to", "http://127.0.0.1:1/")
    assert code == 2
    assert "no webhook secret: pass --secret, set AUTHGEAR_WEBHOOK_SECRET" in err


def test_event_with_a_dev_server_state_file_without_a_webhook_secret_says_so(capsys, tmp_path):
    state = tmp_path / "dev-server.json"
    state.write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "secret": "s"}))
    code, _, err = run(capsys, "event", "user.created", "--to", "http://127.0.0.1:1/", "--state-file", str(state))
    assert code == 2
    assert f"the dev server state file {state} has no webhook secret; restart the dev server" in err
