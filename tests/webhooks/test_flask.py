"""Webhooks in Flask: the ``Webhooks`` dispatcher, secrets from config and the extension, hostile requests."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from flask import Blueprint, Flask, request
from flask.testing import FlaskClient

from flask_authgear import (
    Authgear,
    WebhookAnswer,
    WebhookEvent,
    Webhooks,
)
from flask_authgear.errors import ConfigurationError
from flask_authgear.webhooks import MAX_BODY_BYTES
from tests.support.webhooks import body_signature

SECRET = "whsec-flask-0123456789"
MARKER = "ECHO-MARKER-7f3a"


def body_of(event_type: str = "user.created", event_id: str = "evt-1", **fields: Any) -> bytes:
    data: dict[str, Any] = {
        "id": event_id,
        "seq": 1,
        "type": event_type,
        "payload": {"user": {"id": "user-1", "standard_attributes": {"email": "a@blocked.example"}}},
        "context": {"timestamp": 1_790_000_000, "user_id": "user-1"},
    }
    data.update(fields)
    return json.dumps(data).encode()


def post(client: FlaskClient, body: bytes, signature: str | None = "sign", path: str = "/hook", **kw: Any) -> Any:
    headers = kw.pop("headers", {})
    if signature == "sign":
        signature = body_signature(body, SECRET)
    if signature is not None:
        headers["X-Authgear-Body-Signature"] = signature
    return client.post(path, data=body, headers=headers, content_type="application/json", **kw)


# -- the dispatcher -----------------------------------------------------------------------------------------------


def dispatcher_app(**options: Any) -> tuple[Flask, Webhooks, list[WebhookEvent]]:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    hooks = Webhooks(app, "/hook", **options)
    seen: list[WebhookEvent] = []

    @hooks.on("user.created")
    def created(event: WebhookEvent) -> None:
        seen.append(event)

    @hooks.on("user.pre_create")
    def pre_create(event: WebhookEvent) -> Any:
        return event.allow(roles=["member"])

    @hooks.on("oidc.jwt.pre_create")
    async def jwt(event: WebhookEvent) -> Any:
        return event.allow(jwt_claims={"https://example.com/tier": "gold"})

    @hooks.on("user.profile.pre_update")
    def forgot(event: WebhookEvent) -> None:
        return None

    return app, hooks, seen


def secret_app(extension: dict[str, Any] | None = None, **config: Any) -> tuple[Flask, list[WebhookEvent]]:
    """An app with ``config``, the extension when ``extension`` gives its options, and a dispatcher at ``/hook``
    that reads the app's webhook secret."""
    app = Flask(__name__)
    app.config.update(config)
    if extension is not None:
        Authgear(app, endpoint="https://myapp.authgear.cloud", **extension)
    hooks = Webhooks(app, "/hook")
    seen: list[WebhookEvent] = []
    hooks.on("user.created")(seen.append)
    hooks.on("user.pre_create")(lambda event: event.deny("Sign-ups are closed.", "Closed"))
    return app, seen


def test_a_refusal_is_sent_as_json_that_no_cache_keeps() -> None:
    app, _ = secret_app(AUTHGEAR_WEBHOOK_SECRET=SECRET)
    answer = post(app.test_client(), body_of("user.pre_create"))
    assert answer.status_code == 200
    assert answer.get_json() == {"is_allowed": False, "reason": "Sign-ups are closed.", "title": "Closed"}
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("signature", [None, "0" * 64, body_signature(body_of(), "another-secret")])
def test_an_unsigned_delivery_never_reaches_a_handler(signature: str | None) -> None:
    app, seen = secret_app(AUTHGEAR_WEBHOOK_SECRET=SECRET)
    answer = post(app.test_client(), body_of(), signature)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "invalid_signature"
    assert answer.headers["WWW-Authenticate"].startswith("Signature")
    assert seen == []


def test_a_list_of_secrets_from_config_rotates() -> None:
    app, _ = secret_app(AUTHGEAR_WEBHOOK_SECRET=["next-secret-value", SECRET])
    client = app.test_client()
    assert post(client, body_of(), body_signature(body_of(), "next-secret-value")).status_code == 200
    assert post(client, body_of(event_id="evt-2")).status_code == 200


@pytest.mark.parametrize("with_extension", [False, True], ids=["config-only", "extension"])
def test_a_comma_separated_secret_is_read_the_same_with_or_without_the_extension(with_extension: bool) -> None:
    # An environment variable carries a rotation as "new,old"; both readers must split it the same way.
    app, _ = secret_app({} if with_extension else None, AUTHGEAR_WEBHOOK_SECRET=f"next-secret-value, {SECRET}")
    client = app.test_client()
    assert post(client, body_of(), body_signature(body_of(), "next-secret-value")).status_code == 200
    assert post(client, body_of(event_id="evt-2")).status_code == 200


@pytest.mark.parametrize("with_extension", [False, True], ids=["config-only", "extension"])
def test_the_secret_is_read_from_config_then_the_environment_with_or_without_the_extension(
    with_extension: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings' own order: a key of app.config wins over the environment, even when it is empty.
    monkeypatch.setenv("AUTHGEAR_WEBHOOK_SECRET", SECRET)
    app, _ = secret_app({} if with_extension else None)
    assert post(app.test_client(), body_of()).status_code == 200
    app, _ = secret_app({} if with_extension else None, AUTHGEAR_WEBHOOK_SECRET="next-secret-value")
    assert post(app.test_client(), body_of()).status_code == 401
    with pytest.raises(ConfigurationError, match="no webhook secret"):
        secret_app({} if with_extension else None, AUTHGEAR_WEBHOOK_SECRET="")


def test_a_comma_separated_secret_given_to_the_dispatcher_is_a_rotation() -> None:
    app = Flask(__name__)
    hooks = Webhooks(app, "/hook", secret=f"next-secret-value,{SECRET}")
    hooks.on("user.created")(lambda event: None)
    client = app.test_client()
    assert post(client, body_of(), body_signature(body_of(), "next-secret-value")).status_code == 200
    assert post(client, body_of(event_id="evt-2")).status_code == 200


def test_the_extension_setting_is_used_and_keeps_the_signature_header() -> None:
    # Authgear(app) removes client X-Authgear-* headers; the body signature must survive it.
    app, seen = secret_app({"webhook_secret": SECRET})
    client = app.test_client()
    assert post(client, body_of()).status_code == 200
    assert (
        post(client, body_of(event_id="evt-2"), body_signature(body_of(event_id="evt-2"), "other")).status_code == 401
    )
    assert [event.id for event in seen] == ["evt-1"]


def test_the_raw_body_stays_readable_in_a_handler() -> None:
    app = Flask(__name__)
    hooks = Webhooks(app, "/hook", secret=SECRET)
    lengths: list[int] = []
    hooks.on("user.created")(lambda event: lengths.append(len(request.get_data())))
    body = body_of()
    assert post(app.test_client(), body).status_code == 200
    assert lengths == [len(body)]


def test_the_dispatcher_calls_the_handler_of_the_type() -> None:
    app, _, seen = dispatcher_app()
    answer = post(app.test_client(), body_of())
    assert answer.status_code == 200
    assert [event.id for event in seen] == ["evt-1"]


def test_the_dispatcher_answers_blocking_events() -> None:
    app, _, _ = dispatcher_app()
    answer = post(app.test_client(), body_of("user.pre_create"))
    assert answer.get_json() == {"is_allowed": True, "mutations": {"user": {"roles": ["member"]}}}


def test_an_async_handler_answers() -> None:
    app, _, _ = dispatcher_app()
    body = body_of("oidc.jwt.pre_create", payload={"jwt": {"payload": {"sub": "user-1"}}})
    answer = post(app.test_client(), body)
    assert answer.get_json() == {
        "is_allowed": True,
        "mutations": {"jwt": {"payload": {"sub": "user-1", "https://example.com/tier": "gold"}}},
    }


def test_unhandled_non_blocking_is_200_and_unhandled_blocking_is_501() -> None:
    app, _, _ = dispatcher_app()
    client = app.test_client()
    assert post(client, body_of("user.deleted")).status_code == 200
    refused = post(client, body_of("authentication.pre_initialize"))
    assert refused.status_code == 501
    assert refused.get_json()["error"] == "not_implemented"


def test_a_blocking_handler_returning_none_is_501(caplog: pytest.LogCaptureFixture) -> None:
    app, _, _ = dispatcher_app()
    answer = post(app.test_client(), body_of("user.profile.pre_update"))
    assert answer.status_code == 501
    assert "returned NoneType" in caplog.text


def test_a_duplicate_delivery_is_acknowledged_without_running_the_handler() -> None:
    app, _, seen = dispatcher_app()
    client = app.test_client()
    for _ in range(3):
        assert post(client, body_of()).status_code == 200
    assert post(client, body_of(event_id="evt-2")).status_code == 200
    assert [event.id for event in seen] == ["evt-1", "evt-2"]


def test_a_stale_blocking_event_is_refused() -> None:
    app, _, _ = dispatcher_app(max_age=60, clock=lambda: 1_790_000_000 + 61)
    assert post(app.test_client(), body_of("user.pre_create")).status_code == 401


def test_the_dispatcher_checks_the_secret_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="AUTHGEAR_WEBHOOK_SECRET"):
        Webhooks(Flask(__name__), "/hook")


def test_a_blueprint_dispatcher_checks_the_secret_when_registered() -> None:
    blueprint = Blueprint("hooks", __name__)
    Webhooks(blueprint, "/hook")
    with pytest.raises(ConfigurationError):
        Flask(__name__).register_blueprint(blueprint)
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    app.register_blueprint(blueprint, url_prefix="/authgear")
    assert post(app.test_client(), body_of(), path="/authgear/hook").status_code == 200


def test_an_explicit_secret_wins() -> None:
    app = Flask(__name__)
    Webhooks(app, "/hook", secret="explicit-secret")
    assert post(app.test_client(), body_of(), body_signature(body_of(), "explicit-secret")).status_code == 200


def test_a_raising_handler_is_503() -> None:
    app, hooks, _ = dispatcher_app()

    @hooks.on("user.deleted")
    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("database down")

    answer = post(app.test_client(), body_of("user.deleted"))
    assert answer.status_code == 503
    assert "database" not in answer.get_data(as_text=True)


# -- hostile requests ---------------------------------------------------------------------------------------------


def _deep() -> bytes:
    return b'{"id": "x", "type": "user.created", "payload": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def _signed(body: bytes) -> dict[str, Any]:
    return {"data": body, "headers": {"X-Authgear-Body-Signature": body_signature(body, SECRET)}}


HOSTILE: list[Any] = [
    pytest.param("GET", {}, 405, id="get"),
    pytest.param("PUT", _signed(body_of()), 405, id="put"),
    pytest.param("DELETE", {}, 405, id="delete"),
    pytest.param("OPTIONS", {}, 405, id="options"),
    pytest.param("POST", {"data": body_of(), "content_type": "text/plain"}, 401, id="text-plain-unsigned"),
    pytest.param("POST", {"data": b"x" * (1024 * 1024 + 1), "headers": {}}, 413, id="huge-body"),
    pytest.param("POST", {"data": b"{}", "environ_overrides": {"CONTENT_LENGTH": "abc"}}, 400, id="bad-length"),
    pytest.param("POST", {"data": b"{}", "environ_overrides": {"CONTENT_LENGTH": "-1"}}, 400, id="negative-length"),
    pytest.param("POST", {"data": b"{}", "environ_overrides": {"CONTENT_LENGTH": "\u0663"}}, 400, id="arabic-length"),
    pytest.param("POST", {"data": b"{}", "environ_overrides": {"CONTENT_LENGTH": "9" * 5000}}, 413, id="5000-digits"),
    pytest.param(
        "POST", {"data": b"{}", "environ_overrides": {"CONTENT_LENGTH": "0" * 5000 + "2"}}, 401, id="5000-zeros-length"
    ),
    pytest.param("POST", _signed(b"\xff\xfe" + MARKER.encode()), 400, id="invalid-utf8"),
    pytest.param("POST", _signed(_deep()), 400, id="deep-nesting"),
    pytest.param("POST", _signed(b'{"id": "a", "id": "' + MARKER.encode() + b'", "type": "x"}'), 400, id="dup-keys"),
    pytest.param("POST", _signed(b""), 400, id="empty-signed"),
    pytest.param("POST", _signed(MARKER.encode()), 400, id="not-json-signed"),
    pytest.param("POST", {"data": body_of(), "headers": {"X-Authgear-Body-Signature": MARKER * 4}}, 401, id="sig-text"),
    pytest.param(
        "POST",
        {"data": body_of(), "headers": {"X-Authgear-Body-Signature": "<script>" + "a" * 56}},
        401,
        id="sig-markup",
    ),
    pytest.param(
        "POST",
        {"data": body_of(), "headers": {"X-Authgear-Body-Signature": "é" * 64}},
        401,
        id="sig-non-ascii",
    ),
    pytest.param(
        "POST", {"data": body_of(), "headers": {"X-Authgear-Body-Signature": "a" * 10_000}}, 401, id="sig-long"
    ),
    pytest.param("POST", {"data": MARKER.encode(), "headers": {}}, 401, id="no-signature"),
]


@pytest.mark.parametrize(("method", "request_kw", "status"), HOSTILE)
def test_hostile_requests_get_a_json_error_without_echo(method: str, request_kw: dict[str, Any], status: int) -> None:
    app, _, _ = dispatcher_app()
    kw = dict(request_kw)
    kw.setdefault("content_type", "application/json")
    answer = app.test_client().open("/hook", method=method, **kw)
    assert answer.status_code == status
    assert answer.is_json
    text = answer.get_data(as_text=True) + str(answer.headers)
    assert MARKER not in text and "<script>" not in text
    if status == 405:
        assert answer.headers["Allow"] == "POST"


def test_the_secret_is_not_printed_with_the_settings() -> None:
    app = Flask(__name__)
    ext = Authgear(app, endpoint="https://myapp.authgear.cloud", webhook_secret=SECRET)
    with app.app_context():
        assert ext.settings.webhook_secret == (SECRET,)
        assert SECRET not in repr(ext.settings)


def test_the_dispatcher_reads_the_extension_setting() -> None:
    app = Flask(__name__)
    Authgear(app, endpoint="https://myapp.authgear.cloud", webhook_secret=["next-secret-value", SECRET])
    Webhooks(app, "/hook")
    client = app.test_client()
    assert post(client, body_of()).status_code == 200
    assert (
        post(
            client, body_of(event_id="evt-2"), body_signature(body_of(event_id="evt-2"), "next-secret-value")
        ).status_code
        == 200
    )
    assert post(client, body_of(event_id="evt-3"), body_signature(body_of(event_id="evt-3"), "old")).status_code == 401


# -- a failed non-blocking view, several URLs, a body read before the view --------------------------------------


def test_a_failing_handler_is_logged_with_the_events_id_and_type(caplog: pytest.LogCaptureFixture) -> None:
    app, hooks, _ = dispatcher_app()
    hooks.on("user.deleted")(lambda event: 1 / 0)
    with caplog.at_level("ERROR", logger="flask_authgear"):
        assert post(app.test_client(), body_of("user.deleted", event_id="evt-fail")).status_code == 503
    (record,) = [r for r in caplog.records if r.name == "flask_authgear" and r.levelname == "ERROR"]
    assert "user.deleted (id evt-fail) was not handled" in record.getMessage()


def test_two_webhook_urls_on_one_app() -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    users, billing = Webhooks(app, "/authgear/webhook"), Webhooks(app, "/hooks/billing")
    seen: list[str] = []
    users.on("user.created")(lambda event: seen.append("users"))
    billing.on("user.created")(lambda event: seen.append("billing"))
    client = app.test_client()
    assert post(client, body_of(), path="/authgear/webhook").status_code == 200
    assert post(client, body_of(), path="/hooks/billing").status_code == 200
    assert seen == ["users", "billing"]
    with app.test_request_context():
        from flask import url_for

        assert url_for("authgear_webhook") == "/authgear/webhook"
        assert url_for("hooks_billing") == "/hooks/billing"


def test_a_taken_endpoint_name_is_a_configuration_error_naming_endpoint() -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    Webhooks(app, "/hooks/a", endpoint="hooks")
    with pytest.raises(ConfigurationError, match="endpoint="):
        Webhooks(app, "/hooks/b", endpoint="hooks")
    Webhooks(app, "/hooks/b", endpoint="hooks_b")


def test_two_webhook_urls_in_blueprints() -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    first, second = Blueprint("first", __name__), Blueprint("second", __name__)
    Webhooks(first, "/hook")
    Webhooks(second, "/other-hook")
    app.register_blueprint(first, url_prefix="/a")
    app.register_blueprint(second, url_prefix="/b")
    client = app.test_client()
    assert post(client, body_of(), path="/a/hook").status_code == 200
    assert post(client, body_of(), path="/b/other-hook").status_code == 200


def logging_app() -> Flask:
    """An app whose request logger reads every body through Flask before any view runs."""
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    Webhooks(app, "/hook").on("user.pre_create")(lambda event: event.allow())
    logged: list[int] = []
    app.before_request(lambda: logged.append(len(request.get_data())))
    app.extensions["logged"] = logged
    return app


def test_a_body_read_before_the_view_still_verifies() -> None:
    app = logging_app()
    body = body_of("user.pre_create")
    answer = post(app.test_client(), body)
    assert (answer.status_code, answer.get_json()) == (200, {"is_allowed": True})
    assert app.extensions["logged"] == [len(body)]
    forged = post(app.test_client(), body, body_signature(body + b" ", SECRET))
    assert forged.status_code == 401


def test_a_body_read_before_the_view_is_still_held_to_the_size_cap() -> None:
    body = body_of("user.pre_create", padding="x" * MAX_BODY_BYTES)
    answer = post(logging_app().test_client(), body)
    assert answer.status_code == 413


def test_a_handler_answer_authgear_would_refuse_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    app, hooks, _ = dispatcher_app()
    refused = WebhookAnswer({"is_allowed": True, "constraints": {"amr": ["x_passkey"]}})
    hooks.on("authentication.pre_initialize")(lambda event: refused)
    answer = post(app.test_client(), body_of("authentication.pre_initialize"))
    assert answer.status_code == 501
    assert "constraints.amr accepts only" in caplog.text


# -- async handlers ---------------------------------------------------------------------------------------------


def test_an_async_handler_of_a_non_blocking_event_runs_before_the_acknowledgement() -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    hooks = Webhooks(app, "/hook")
    seen: list[str] = []

    @hooks.on("user.created")
    async def created(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.id)

    client = app.test_client()
    assert post(client, body_of(event_id="async-1")).status_code == 200
    assert post(client, body_of(event_id="async-1")).status_code == 200  # the same event again: acknowledged only
    assert seen == ["async-1"]


def test_a_handler_that_returns_an_unawaited_coroutine_is_503_not_a_handled_event() -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_WEBHOOK_SECRET"] = SECRET
    hooks = Webhooks(app, "/hook")
    calls: list[str] = []

    async def handle(event: WebhookEvent) -> None:
        calls.append(event.id)

    hooks.on("user.created")(lambda event: handle(event))  # not itself async: nobody would await its answer
    client = app.test_client()
    assert post(client, body_of(event_id="lost-1")).status_code == 503
    assert post(client, body_of(event_id="lost-1")).status_code == 503  # not recorded as handled
    assert calls == []
    assert hooks.failures["user.created"] == 2


def test_an_async_handler_without_flasks_async_extra_is_refused_when_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def created(event: WebhookEvent) -> None:
        return None

    hooks = Webhooks(secret=SECRET)
    monkeypatch.setitem(sys.modules, "asgiref", None)  # what "not installed" looks like to an import
    with pytest.raises(ConfigurationError, match=r"flask\[async\]"):
        hooks.on("user.created")(created)
