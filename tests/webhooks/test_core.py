"""The framework-agnostic webhook core: signature, event parsing, blocking answers, dispatch rules, idempotency."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from flask_authgear.config import Settings
from flask_authgear.core.json import MAX_DEPTH
from flask_authgear.errors import ConfigurationError
from flask_authgear.user import freeze
from flask_authgear.webhooks import (
    BLOCKING_EVENTS,
    EVENT_TYPES,
    MAX_BODY_BYTES,
    WebhookAnswer,
    WebhookError,
    WebhookEvent,
    verify_webhook,
    webhook_secrets,
)
from flask_authgear.webhooks.answers import ACKNOWLEDGED
from flask_authgear.webhooks.dispatch import MemoryIdempotencyStore, RedisIdempotencyStore, WebhookHandlers
from flask_authgear.webhooks.errors import (
    InvalidWebhookError,
    InvalidWebhookSignatureError,
    StaleWebhookError,
    WebhookHandlerError,
    WebhookMethodNotAllowedError,
    WebhookNotHandledError,
    WebhookTooLargeError,
)
from flask_authgear.webhooks.signature import read_body
from tests.support.redis_server import RedisServer
from tests.support.webhooks import body_signature

SECRET = "whsec-test-0123456789"
EVENT_ID = "000000000000002a"  # Authgear's id: the sequence number in 16 hex digits
NOW = 1_790_000_000


def nested(depth: int) -> Any:
    """``depth`` levels of arrays around a number."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_payload_nested_to_the_bound_is_an_event() -> None:
    body = event_body(payload={"user": {"id": "u", "x": nested(MAX_DEPTH - 3)}})  # body, payload, user, x
    assert verify_webhook(body, body_signature(body, SECRET), SECRET).payload["user"]["x"] == freeze(
        nested(MAX_DEPTH - 3)
    )


def event_body(event_type: str = "user.created", **fields: Any) -> bytes:
    data: dict[str, Any] = {
        "id": EVENT_ID,
        "seq": 42,
        "type": event_type,
        "payload": {"user": {"id": "user-1", "standard_attributes": {"email": "a@example.com"}}},
        "context": {"timestamp": NOW, "user_id": "user-1", "triggered_by": "user"},
    }
    data.update(fields)
    return json.dumps(data).encode()


def handlers(table: dict[str, Any], **options: Any) -> WebhookHandlers:
    hooks = WebhookHandlers(**options)
    for event_type, handler in table.items():
        hooks.on(event_type)(handler)
    return hooks


def event(event_type: str = "user.created", **fields: Any) -> WebhookEvent:
    body = event_body(event_type, **fields)
    return verify_webhook(body, body_signature(body, SECRET), SECRET)


# -- signature ------------------------------------------------------------------------------------------------


def test_a_correctly_signed_body_gives_its_event() -> None:
    got = event()
    assert got.id == EVENT_ID
    assert got.type == "user.created"
    assert got.seq == 42
    assert got.timestamp == datetime.fromtimestamp(NOW, tz=timezone.utc)
    assert got.timestamp is not None and got.timestamp.tzinfo is timezone.utc
    assert got.user_id == "user-1"
    assert not got.is_blocking
    assert got.context["triggered_by"] == "user"


def test_upper_case_hex_is_the_same_signature() -> None:
    body = event_body()
    assert verify_webhook(body, body_signature(body, SECRET).upper(), SECRET).type == "user.created"


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(body_signature(b"other body", SECRET), id="another-body"),
        pytest.param(body_signature(event_body(), "another-secret"), id="another-secret"),
        pytest.param(body_signature(event_body(), SECRET)[:-1], id="63-chars"),
        pytest.param(body_signature(event_body(), SECRET) + "0", id="65-chars"),
        pytest.param(" " + body_signature(event_body(), SECRET)[1:], id="leading-space"),
        pytest.param("sha256=" + body_signature(event_body(), SECRET), id="prefixed"),
        pytest.param("g" * 64, id="not-hex"),
        pytest.param("\u0660" * 64, id="unicode-digits"),
        pytest.param("\ud800" * 64, id="lone-surrogates"),
    ],
)
def test_bad_signatures_are_401(signature: str | None) -> None:
    with pytest.raises(InvalidWebhookSignatureError) as caught:
        verify_webhook(event_body(), signature, SECRET)
    assert caught.value.status_code == 401
    assert "user.created" not in caught.value.body().decode()


def test_whitespace_around_the_signature_is_not_part_of_it() -> None:
    # HTTP does not count spaces and tabs around a header value as part of it (RFC 9110 5.5).
    body = event_body()
    assert verify_webhook(body, f" \t{body_signature(body, SECRET)}  ", SECRET).type == "user.created"


def test_one_changed_byte_breaks_the_signature() -> None:
    body = event_body()
    signature = body_signature(body, SECRET)
    for index in (0, len(body) // 2, len(body) - 1):
        changed = bytearray(body)
        changed[index] ^= 0x01
        with pytest.raises(InvalidWebhookSignatureError):
            verify_webhook(bytes(changed), signature, SECRET)


def test_any_of_several_secrets_verifies_during_a_rotation() -> None:
    body = event_body()
    secrets = ["new-secret-value", SECRET]
    assert verify_webhook(body, body_signature(body, "new-secret-value"), secrets).id
    assert verify_webhook(body, body_signature(body, SECRET), secrets).id
    with pytest.raises(InvalidWebhookSignatureError):
        verify_webhook(body, body_signature(body, "retired-secret"), secrets)


@pytest.mark.parametrize("secret", [f"new-secret-value,{SECRET}", f" new-secret-value , {SECRET} "])
def test_a_comma_separated_string_is_several_secrets_as_the_setting_reads_it(secret: str) -> None:
    # The form an environment variable carries during a rotation, given straight to verify_webhook.
    body = event_body()
    assert webhook_secrets(secret) == Settings(webhook_secret=secret, endpoint="https://a.example").webhook_secret
    assert verify_webhook(body, body_signature(body, "new-secret-value"), secret).id
    assert verify_webhook(body, body_signature(body, SECRET), secret).id


@pytest.mark.parametrize("secret", [None, "", " , ", [], [""], [SECRET, 3], f"{SECRET},,other"])
def test_no_usable_secret_is_a_configuration_error(secret: Any) -> None:
    body = event_body()
    with pytest.raises(ConfigurationError):
        verify_webhook(body, body_signature(body, SECRET), secret)


JSON_NO_STORE = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


@pytest.mark.parametrize(
    ("error", "headers"),
    [
        pytest.param(InvalidWebhookError(), JSON_NO_STORE, id="400"),
        pytest.param(
            InvalidWebhookSignatureError(),
            [
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", 'Signature realm="authgear"'),
                JSON_NO_STORE[1],
            ],
            id="401",
        ),
        pytest.param(WebhookMethodNotAllowedError(), [*JSON_NO_STORE, ("Allow", "POST")], id="405"),
        pytest.param(WebhookTooLargeError(), JSON_NO_STORE, id="413"),
        pytest.param(WebhookNotHandledError(), JSON_NO_STORE, id="501"),
        pytest.param(WebhookHandlerError(), JSON_NO_STORE, id="503"),
    ],
)
def test_a_webhook_error_is_json_no_store_and_only_a_401_has_a_challenge(
    error: WebhookError, headers: list[tuple[str, str]]
) -> None:
    # Not bearer authentication: no Bearer challenge, and a Signature one only where HTTP requires one.
    assert error.headers() == headers


def test_an_oversized_body_is_413_before_hashing() -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(WebhookTooLargeError) as caught:
        verify_webhook(body, body_signature(body, SECRET), SECRET)
    assert caught.value.status_code == 413


class Trickle(io.RawIOBase):
    """A server's input stream that answers each read with a few bytes, as a socket may."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece, self.data = self.data[:7], self.data[7:]
        buffer[: len(piece)] = piece
        return len(piece)


@pytest.mark.parametrize("terminated", [False, True], ids=["content-length", "chunked"])
def test_a_body_that_arrives_in_pieces_is_read_whole(terminated: bool) -> None:
    body = event_body()
    environ: dict[str, Any] = {"wsgi.input": Trickle(body), "CONTENT_LENGTH": str(len(body))}
    if terminated:
        environ["wsgi.input_terminated"] = True
    assert read_body(environ) == body
    assert environ["wsgi.input"].read() == body  # put back for the framework


def test_a_body_shorter_than_its_content_length_is_400() -> None:
    # The client left before sending what it announced: a malformed request, not a wrong signature.
    environ = {"wsgi.input": io.BytesIO(b"{}"), "CONTENT_LENGTH": "100"}
    with pytest.raises(WebhookError) as caught:
        read_body(environ)
    assert (caught.value.status_code, caught.value.description) == (
        400,
        "The request body ended before it was complete.",
    )


def test_the_body_is_not_parsed_before_the_signature_is_checked() -> None:
    # Not JSON, unsigned: the answer is about the signature, so nothing of the body was looked at.
    with pytest.raises(InvalidWebhookSignatureError):
        verify_webhook(b"{not json", "0" * 64, SECRET)


# -- malformed but signed bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="invalid-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"user.created"', id="string"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(json.dumps({"type": "user.created"}).encode(), id="no-id"),
        pytest.param(json.dumps({"id": "x"}).encode(), id="no-type"),
        pytest.param(json.dumps({"id": 1, "type": "user.created"}).encode(), id="numeric-id"),
        pytest.param(json.dumps({"id": "", "type": "user.created"}).encode(), id="empty-id"),
        pytest.param(event_body(seq="42"), id="string-seq"),
        pytest.param(event_body(seq=True), id="bool-seq"),
        pytest.param(event_body(seq=1.5), id="float-seq"),
        pytest.param(event_body(payload=[]), id="payload-array"),
        pytest.param(event_body(context="x"), id="context-string"),
        pytest.param(event_body(context={"timestamp": "yesterday"}), id="string-timestamp"),
        pytest.param(event_body(context={"timestamp": True}), id="bool-timestamp"),
        pytest.param(event_body(context={"timestamp": 10**30}), id="huge-timestamp"),
        pytest.param(b'{"id": "a", "id": "b", "type": "user.created"}', id="duplicate-keys"),
        pytest.param(b'{"id": "a", "type": "user.created", "seq": NaN}', id="nan"),
        pytest.param(b'{"id": "a", "type": "user.created", "payload": {"n": -Infinity}}', id="infinity"),
        pytest.param(b'{"id": "a", "type": "user.created", "payload": {"n": 1e999}}', id="float-overflow"),
        pytest.param(event_body(seq=2**63), id="seq-over-int64"),
        pytest.param(b'{"id": "a", "type": "user.created", "seq": ' + b"9" * 100_000 + b"}", id="100k-digit-seq"),
        pytest.param(event_body(context={"timestamp": -(10**20)}), id="negative-huge-timestamp"),
        pytest.param(event_body(context={"timestamp": 1e300}), id="float-huge-timestamp"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        # The body, payload and user objects are three levels: this payload is one level past the bound.
        pytest.param(event_body(payload={"user": {"id": "u", "x": nested(MAX_DEPTH - 2)}}), id="one-level-too-deep"),
        pytest.param(event_body(payload={"x": nested(600)}), id="deep-enough-to-recurse"),
    ],
)
def test_signed_but_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(InvalidWebhookError) as caught:
        verify_webhook(body, body_signature(body, SECRET), SECRET)
    assert caught.value.status_code == 400
    assert caught.value.to_dict() == {
        "error": "invalid_request",
        "error_description": "The webhook body is not a valid Authgear event.",
    }


# -- the event ------------------------------------------------------------------------------------------------


def test_the_event_is_immutable() -> None:
    got = event()
    with pytest.raises(AttributeError):
        got.type = "user.deleted"  # type: ignore[misc]
    with pytest.raises(TypeError):
        got.payload["user"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        got.payload["user"]["id"] = "admin"


def test_the_events_repr_leaves_personal_data_out() -> None:
    text = repr(event())
    assert "user.created" in text and EVENT_ID in text
    assert "a@example.com" not in text


def test_user_id_falls_back_to_the_payload_user() -> None:
    assert event(context={"timestamp": NOW}).user_id == "user-1"
    assert event(context={}, payload={}).user_id is None
    assert event(context={}, payload={}).timestamp is None


@pytest.mark.parametrize("event_type", sorted(BLOCKING_EVENTS))
def test_blocking_events_are_the_references_list(event_type: str) -> None:
    assert event(event_type).is_blocking


def test_the_reference_lists_exactly_nine_blocking_events() -> None:
    assert len(BLOCKING_EVENTS) == 9
    assert not event("identity.email.added").is_blocking


# -- blocking answers ------------------------------------------------------------------------------------------


JWT_PAYLOAD = {"iss": "https://p.authgear.cloud", "sub": "user-1", "aud": ["https://p.authgear.cloud"], "exp": 1}


def test_allow_and_deny_are_exactly_what_authgear_reads() -> None:
    assert event("user.pre_create").allow().to_dict() == {"is_allowed": True}
    assert json.loads(event("user.pre_create").allow().to_json()) == {"is_allowed": True}
    assert event("user.pre_create").deny("Sign-ups from this domain are closed.", "Not allowed").to_dict() == {
        "is_allowed": False,
        "reason": "Sign-ups from this domain are closed.",
        "title": "Not allowed",
    }
    assert event("authentication.pre_initialize").deny("r", "t") == event("user.pre_create").deny("r", "t")


@pytest.mark.parametrize(("reason", "title"), [("", "t"), ("r", ""), ("  ", "t"), ("r", None)])
def test_deny_needs_a_reason_and_a_title(reason: str, title: Any) -> None:
    with pytest.raises(ValueError, match="reason and title"):
        event("user.pre_create").deny(reason, title)


def test_user_mutations_for_user_events() -> None:
    answer = event("user.pre_create").allow(
        standard_attributes={"email": "a@example.com", "name": "A"},
        custom_attributes={"tier": "gold"},
        roles=["member"],
        groups=[],
    )
    assert answer.to_dict() == {
        "is_allowed": True,
        "mutations": {
            "user": {
                "standard_attributes": {"email": "a@example.com", "name": "A"},
                "custom_attributes": {"tier": "gold"},
                "roles": ["member"],
                "groups": [],
            }
        },
    }


def test_jwt_claims_are_added_to_the_whole_payload() -> None:
    got = event("oidc.jwt.pre_create", payload={"user": {"id": "user-1"}, "jwt": {"payload": JWT_PAYLOAD}})
    answer = got.allow(jwt_claims={"https://example.com/tier": "gold", "sub": "user-1"})
    assert answer.to_dict() == {
        "is_allowed": True,
        "mutations": {"jwt": {"payload": {**JWT_PAYLOAD, "https://example.com/tier": "gold"}}},
    }


def test_a_jwt_claim_cannot_change_an_existing_one() -> None:
    got = event("oidc.jwt.pre_create", payload={"jwt": {"payload": JWT_PAYLOAD}})
    with pytest.raises(ValueError, match="'sub' already exists"):
        got.allow(jwt_claims={"sub": "admin"})


def test_id_token_claims_are_read_and_written_under_id_token() -> None:
    # The server's OIDCIDTokenPreCreate payload is {"id_token": {"payload": ...}} and it applies
    # mutations.id_token.payload only.
    got = event("oidc.id_token.pre_create", payload={"id_token": {"payload": JWT_PAYLOAD}})
    assert got.allow(id_token_claims={"nickname": "a"}).to_dict() == {
        "is_allowed": True,
        "mutations": {"id_token": {"payload": {**JWT_PAYLOAD, "nickname": "a"}}},
    }
    with pytest.raises(ValueError, match="no token payload"):
        event("oidc.id_token.pre_create", payload={"jwt": {"payload": JWT_PAYLOAD}}).allow(id_token_claims={"x": 1})


def test_a_claim_equal_to_an_existing_one_keeps_the_tokens_value() -> None:
    # True == 1 in Python: the token must still carry its own 1, not the handler's True.
    got = event("oidc.jwt.pre_create", payload={"jwt": {"payload": {"sub": "user-1", "level": 1}}})
    assert got.allow(jwt_claims={"level": True}).to_dict()["mutations"]["jwt"]["payload"] == {
        "sub": "user-1",
        "level": 1,
    }


def test_an_answer_that_is_not_json_is_refused() -> None:
    got = event("oidc.jwt.pre_create", payload={"jwt": {"payload": JWT_PAYLOAD}})
    with pytest.raises(ValueError):
        got.allow(jwt_claims={"score": float("nan")})


def test_claims_need_the_events_token_payload() -> None:
    with pytest.raises(ValueError, match="no token payload"):
        event("oidc.jwt.pre_create", payload={}).allow(jwt_claims={"x": 1})


def test_authentication_options() -> None:
    answer = event("authentication.post_identified").allow(
        amr=["mfa"], rate_limits={"authentication.general": {"weight": 2}}, bot_protection="always"
    )
    assert answer.to_dict() == {
        "is_allowed": True,
        "constraints": {"amr": ["mfa"]},
        "rate_limits": {"authentication.general": {"weight": 2}},
        "bot_protection": {"mode": "always"},
    }
    with pytest.raises(ValueError, match="always"):
        event("authentication.pre_initialize").allow(bot_protection="sometimes")


@pytest.mark.parametrize(
    ("event_type", "options"),
    [
        ("authentication.pre_initialize", {"roles": ["admin"]}),
        ("oidc.jwt.pre_create", {"standard_attributes": {"email": "x"}}),
        ("user.pre_create", {"jwt_claims": {"x": 1}}),
        ("oidc.jwt.pre_create", {"id_token_claims": {"x": 1}}),
        ("oidc.id_token.pre_create", {"jwt_claims": {"x": 1}}),
        ("user.pre_create", {"amr": ["mfa"]}),
        ("oidc.id_token.pre_create", {"rate_limits": {}}),
        ("user.profile.pre_update", {"bot_protection": "never"}),
    ],
)
def test_options_are_refused_for_events_that_do_not_support_them(event_type: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"not supported|does not accept"):
        event(event_type, payload={"jwt": {"payload": JWT_PAYLOAD}}).allow(**options)


def test_non_blocking_events_have_no_answer() -> None:
    with pytest.raises(ValueError, match="not a blocking event"):
        event("user.created").allow()
    with pytest.raises(ValueError, match="not a blocking event"):
        event("user.created").deny("r", "t")


@pytest.mark.parametrize("roles", ["admin", ["admin", ""], [1]])
def test_roles_must_be_a_list_of_names(roles: Any) -> None:
    with pytest.raises(ValueError, match="roles"):
        event("user.pre_create").allow(roles=roles)


# -- dispatch ---------------------------------------------------------------------------------------------------


def test_a_non_blocking_event_without_handler_is_acknowledged() -> None:
    assert WebhookHandlers().dispatch(event("user.created")).to_dict() == {}


def test_a_blocking_event_without_handler_is_501() -> None:
    with pytest.raises(WebhookNotHandledError) as caught:
        WebhookHandlers().dispatch(event("user.pre_create"))
    assert caught.value.status_code == 501


def test_a_blocking_handler_must_answer() -> None:
    hooks = handlers({"user.pre_create": lambda e: None})
    with pytest.raises(WebhookNotHandledError, match="no answer"):
        hooks.dispatch(event("user.pre_create"))


def test_a_blocking_handler_must_not_answer_with_a_bare_acknowledgement() -> None:
    hooks = handlers({"user.pre_create": lambda e: ACKNOWLEDGED})
    with pytest.raises(WebhookNotHandledError, match="no answer"):
        hooks.dispatch(event("user.pre_create"))


def test_a_hand_built_answer_authgear_would_refuse_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    answer = WebhookAnswer({"is_allowed": True, "bot_protection": {"mode": "always"}})
    hooks = handlers({"authentication.pre_authenticated": lambda e: answer})
    with pytest.raises(WebhookNotHandledError, match="not one Authgear accepts") as caught:
        hooks.dispatch(event("authentication.pre_authenticated"))
    assert caught.value.status_code == 501
    assert "does not accept bot_protection" in caplog.text
    hooks = handlers({"authentication.pre_initialize": lambda e: answer})  # the same answer where it is accepted
    assert hooks.dispatch(event("authentication.pre_initialize")) == answer


def test_a_blocking_handler_answer_is_returned() -> None:
    hooks = handlers({"user.pre_create": lambda e: e.deny("No.", "Closed")})
    assert hooks.dispatch(event("user.pre_create")).to_dict()["is_allowed"] is False


def test_a_failing_handler_is_503() -> None:
    def broken(e: WebhookEvent) -> None:
        raise RuntimeError("boom")

    with pytest.raises(WebhookHandlerError) as caught:
        handlers({"user.created": broken}).dispatch(event())
    assert caught.value.status_code == 503


def test_a_handler_registered_twice_is_a_configuration_error() -> None:
    hooks = handlers({"user.created": lambda e: None})
    with pytest.raises(ConfigurationError):
        hooks.on("user.created")(lambda e: None)


def test_duplicate_non_blocking_deliveries_run_the_handler_once() -> None:
    calls: list[str] = []
    hooks = handlers({"user.created": lambda e: calls.append(e.id)})
    for _ in range(3):
        assert hooks.dispatch(event()).to_dict() == {}
    assert len(calls) == 1


def test_a_failed_non_blocking_handler_is_logged_counted_and_answered_503(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def flaky(e: WebhookEvent) -> None:
        calls.append(e.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    hooks = handlers({"user.created": flaky})
    with caplog.at_level("ERROR", logger="flask_authgear"), pytest.raises(WebhookHandlerError) as caught:
        hooks.dispatch(event())
    assert caught.value.status_code == 503
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "user.created" in record.getMessage() and EVENT_ID in record.getMessage()
    assert "does not send an event twice" in record.getMessage() and record.exc_info is not None
    assert hooks.failures == {"user.created": 1}
    # Authgear never sends it again; the id is released so that another delivery of it (a second hook URL of the
    # app, or the app resending a delivery it recorded) still runs the handler, once.
    hooks.dispatch(event())
    hooks.dispatch(event())
    assert len(calls) == 2 and hooks.failures == {"user.created": 1}


def test_a_handler_stopped_by_a_base_exception_releases_the_event_id() -> None:
    # A worker's timeout (gevent.Timeout, SystemExit) is no Exception, and the event was not handled either.
    class Stopped(BaseException):
        pass

    calls: list[str] = []

    def stopped_once(e: WebhookEvent) -> None:
        calls.append(e.id)
        if len(calls) == 1:
            raise Stopped()

    hooks = handlers({"user.created": stopped_once})
    with pytest.raises(Stopped):
        hooks.dispatch(event())
    hooks.dispatch(event())
    hooks.dispatch(event())
    assert len(calls) == 2


def test_a_handler_failure_answer_promises_no_retry() -> None:
    assert "Retry-After" not in dict(WebhookHandlerError().headers())


def test_idempotency_can_be_turned_off() -> None:
    calls: list[str] = []
    hooks = handlers({"user.created": lambda e: calls.append(e.id)}, idempotency=False)
    hooks.dispatch(event())
    hooks.dispatch(event())
    assert len(calls) == 2


def test_blocking_events_are_not_deduplicated() -> None:
    calls: list[str] = []

    def handler(e: WebhookEvent) -> Any:
        calls.append(e.id)
        return e.allow()

    hooks = handlers({"user.pre_create": handler})
    hooks.dispatch(event("user.pre_create"))
    hooks.dispatch(event("user.pre_create"))
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("now", "accepted"),
    [(NOW, True), (NOW + 30, True), (NOW + 31, False), (NOW - 31, False), (NOW + 10**6, False)],
)
def test_max_age_refuses_stale_blocking_events(now: float, accepted: bool) -> None:
    hooks = handlers({"user.pre_create": lambda e: e.allow()}, max_age=30, clock=lambda: now)
    if accepted:
        assert hooks.dispatch(event("user.pre_create")) == event("user.pre_create").allow()
    else:
        with pytest.raises(StaleWebhookError):
            hooks.dispatch(event("user.pre_create"))


def test_a_slow_blocking_handler_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    now = [float(NOW)]

    def slow(e: WebhookEvent) -> Any:
        now[0] += 6  # the handler's work, on the injected clock
        return e.allow()

    hooks = handlers({"user.pre_create": slow}, clock=lambda: now[0])
    assert hooks.dispatch(event("user.pre_create")) == event("user.pre_create").allow()
    assert "took 6.0 s: Authgear gives up after 5 s" in caplog.text


def test_max_age_refuses_a_blocking_event_without_timestamp() -> None:
    hooks = handlers({"user.pre_create": lambda e: e.allow()}, max_age=30, clock=lambda: NOW)
    with pytest.raises(StaleWebhookError):
        hooks.dispatch(event("user.pre_create", context={}))


@pytest.mark.parametrize("event_type", ["user.created", "user.pre_create"])
def test_max_age_covers_every_event_type(event_type: str) -> None:
    calls: list[str] = []
    hooks = handlers({event_type: lambda e: calls.append(e.id) or e.allow()}, max_age=30, clock=lambda: NOW + 3600)
    with pytest.raises(StaleWebhookError):
        hooks.dispatch(event(event_type))
    assert calls == [] and hooks.failures == {}


@pytest.mark.parametrize("max_age", [0, -1, True, "30"])
def test_max_age_must_be_positive(max_age: Any) -> None:
    with pytest.raises(ConfigurationError):
        WebhookHandlers(max_age=max_age)
    with pytest.raises(ConfigurationError, match="sync_hook_timeout"):
        WebhookHandlers(sync_hook_timeout=max_age)


def test_the_projects_sync_hook_timeout_decides_what_is_slow(caplog: pytest.LogCaptureFixture) -> None:
    now = [float(NOW)]

    def handler(e: WebhookEvent) -> Any:
        now[0] += 4  # slower than a project's 3 s, within Authgear's default 5 s
        return e.allow()

    default = handlers({"user.pre_create": handler}, clock=lambda: now[0])
    default.dispatch(event("user.pre_create"))
    assert "gives up" not in caplog.text
    strict = handlers({"user.pre_create": handler}, sync_hook_timeout=3, clock=lambda: now[0])
    strict.dispatch(event("user.pre_create"))
    assert "took 4.0 s: Authgear gives up after 3 s" in caplog.text


# -- event types at registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "guess"),
    [
        ("user.create", "user.created"),
        ("user.pre-create", "user.pre_create"),
        ("identity.email.verify", "identity.email.verified"),
        ("oidc.jwt.precreate", "oidc.jwt.pre_create"),
        ("User.Created", "user.created"),
    ],
)
def test_an_unknown_event_type_is_refused_with_the_nearest_real_one(name: str, guess: str) -> None:
    with pytest.raises(ConfigurationError, match=f"did you mean '{guess}'"):
        WebhookHandlers().on(name)


@pytest.mark.parametrize("name", ["webhook", "user", "**", ""])
def test_a_name_that_is_no_event_type_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError):
        WebhookHandlers().on(name)


def test_every_real_type_and_the_wildcard_are_accepted() -> None:
    hooks = WebhookHandlers()
    for event_type in (*EVENT_TYPES, "*"):
        hooks.on(event_type)(lambda e: None)


def test_the_wildcard_handles_non_blocking_events_without_their_own_handler(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    hooks = handlers({"*": lambda e: seen.append(e.type), "user.deleted": lambda e: seen.append("own")})
    for event_type in ("user.created", "identity.email.verified", "user.deleted"):
        assert hooks.dispatch(event(event_type, id=event_type)) == ACKNOWLEDGED
    assert seen == ["user.created", "identity.email.verified", "own"]
    with pytest.raises(WebhookNotHandledError):  # a blocking event's answer is never the wildcard's
        hooks.dispatch(event("user.pre_create"))


def test_an_unhandled_non_blocking_event_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="flask_authgear"):
        assert WebhookHandlers().dispatch(event()) == ACKNOWLEDGED
    assert f"no handler for the webhook event user.created (id {EVENT_ID})" in caplog.text


# -- stores ---------------------------------------------------------------------------------------------------


def test_memory_store_is_bounded_and_expires() -> None:
    now = [0.0]
    store = MemoryIdempotencyStore(max_entries=2, ttl=10, clock=lambda: now[0])
    assert store.claim("a") and store.claim("b")
    assert not store.claim("a")  # "a" is now the most recently seen
    assert store.claim("c")  # "b", the least recently seen, is forgotten
    assert not store.claim("a")
    assert store.claim("b")
    now[0] = 10.0
    assert store.claim("b") and store.claim("c")  # expired
    store.release("c")
    assert store.claim("c")


def test_redis_store_claims_once_across_stores(redis_server: RedisServer) -> None:
    first = RedisIdempotencyStore.from_url(redis_server.url, ttl=60)
    second = RedisIdempotencyStore.from_url(redis_server.url, ttl=60)  # another worker
    assert first.claim("evt-1")
    assert not second.claim("evt-1")
    assert first.client.ttl("flask_authgear_webhook:evt-1") > 0
    second.release("evt-1")
    assert first.claim("evt-1")
    calls: list[str] = []
    hooks = handlers({"user.created": lambda e: calls.append(e.id)}, store=second)
    other = handlers({"user.created": lambda e: calls.append(e.id)}, store=first)
    hooks.dispatch(event())
    other.dispatch(event())
    assert len(calls) == 1


def test_an_async_redis_client_is_a_failed_delivery_not_a_claim(redis_server: RedisServer) -> None:
    import redis.asyncio

    calls: list[str] = []
    client = redis.asyncio.Redis.from_url(redis_server.url)
    hooks = handlers({"user.created": lambda e: calls.append(e.id)}, store=RedisIdempotencyStore(client))  # type: ignore[arg-type]
    with pytest.raises(WebhookHandlerError):
        hooks.dispatch(event())
    assert calls == []  # nothing was claimed, so nothing ran: a later delivery can still be handled


class AsyncStore:
    """A store written for an event loop: what its methods answer is a coroutine, not True or None."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def claim(self, event_id: str) -> bool:
        fresh = event_id not in self.seen
        self.seen.add(event_id)
        return fresh

    async def release(self, event_id: str) -> None:
        self.seen.discard(event_id)


def test_a_store_with_async_methods_is_a_failed_delivery_not_a_claim() -> None:
    calls: list[str] = []
    hooks = handlers({"user.created": lambda e: calls.append(e.id)}, store=AsyncStore())  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(WebhookHandlerError):
            hooks.dispatch(event())
    assert calls == []
    assert hooks.failures["user.created"] == 2  # each failed delivery is counted, never taken as handled


def test_an_unreachable_store_is_503_and_the_event_counted_as_lost() -> None:
    import redis

    from tests.support.net import free_port

    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, socket_timeout=1)
    hooks = handlers({"user.created": lambda e: None}, store=RedisIdempotencyStore(client))
    with pytest.raises(WebhookHandlerError):
        hooks.dispatch(event())
    assert hooks.failures == {"user.created": 1}
