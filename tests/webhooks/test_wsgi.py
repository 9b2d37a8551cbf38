"""The WSGI webhook endpoint, served by a real Werkzeug server on 127.0.0.1, beside the auth middleware."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from flask_authgear import AuthgearMiddleware, WebhookEndpoint, WebhookEvent
from flask_authgear.errors import ConfigurationError
from tests.support.app_server import AppServer, send_raw
from tests.support.webhooks import body_signature

SECRET = "whsec-wsgi-0123456789"
MARKER = "ECHO-MARKER-9c1d"


def body_of(event_type: str = "user.created", event_id: str = "evt-1", **fields: Any) -> bytes:
    data = {"id": event_id, "seq": 7, "type": event_type, "payload": {}, "context": {"timestamp": 1_790_000_000}}
    data.update(fields)
    return json.dumps(data).encode()


def send(port: int, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, "/authgear/webhook", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Authgear-Body-Signature": body_signature(body, SECRET)}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, list[WebhookEvent]]]:
    seen: list[WebhookEvent] = []
    hooks = WebhookEndpoint(SECRET)

    @hooks.on("user.created")
    def created(event: WebhookEvent) -> None:
        seen.append(event)

    @hooks.on("user.pre_create")
    def pre_create(event: WebhookEvent) -> Any:
        return event.deny("Sign-ups are closed.", "Closed")

    def protected_app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]

    # The documented layout: the whole app is protected, the webhook is mounted in front of the middleware.
    guarded = AuthgearMiddleware(protected_app, endpoint="https://myapp.authgear.cloud", protect="/")
    with AppServer(DispatcherMiddleware(guarded, {"/authgear/webhook": hooks})) as server:
        yield server.port, seen


def test_a_signed_event_is_handled_and_acknowledged(served: tuple[int, list[WebhookEvent]]) -> None:
    port, seen = served
    body = body_of(event_id="wsgi-1")
    status, headers, raw = send(port, body, signed(body))
    assert (status, json.loads(raw)) == (200, {})
    assert headers["content-type"] == "application/json"
    assert [event.id for event in seen].count("wsgi-1") == 1
    assert send(port, body, signed(body))[0] == 200  # a replay, or the same event at a second hook URL
    assert [event.id for event in seen].count("wsgi-1") == 1


def test_a_blocking_answer_is_sent(served: tuple[int, list[WebhookEvent]]) -> None:
    body = body_of("user.pre_create")
    status, _, raw = send(served[0], body, signed(body))
    assert status == 200
    assert json.loads(raw) == {"is_allowed": False, "reason": "Sign-ups are closed.", "title": "Closed"}


def test_unhandled_blocking_is_501(served: tuple[int, list[WebhookEvent]]) -> None:
    body = body_of("authentication.pre_authenticated")
    assert send(served[0], body, signed(body))[0] == 501


HOSTILE: list[Any] = [
    pytest.param("GET", b"", {}, 405, id="get"),
    pytest.param("PUT", body_of(), signed(body_of()), 405, id="put"),
    pytest.param("POST", body_of(), {}, 401, id="no-signature"),
    pytest.param("POST", body_of(), {"X-Authgear-Body-Signature": MARKER * 4}, 401, id="signature-text"),
    pytest.param("POST", body_of() + b" ", signed(body_of()), 401, id="one-byte-more"),
    pytest.param("POST", b"\xff" + MARKER.encode(), signed(b"\xff" + MARKER.encode()), 400, id="invalid-utf8"),
    pytest.param("POST", b"[" * 20_000, signed(b"[" * 20_000), 400, id="deep-nesting"),
    pytest.param("POST", MARKER.encode(), {"Content-Type": "text/plain"}, 401, id="text-plain"),
]


@pytest.mark.parametrize(("method", "body", "headers", "status"), HOSTILE)
def test_hostile_requests_over_the_network(
    served: tuple[int, list[WebhookEvent]], method: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    got, answer_headers, raw = send(served[0], body, headers, method)
    assert got == status
    assert answer_headers["content-type"] == "application/json"
    assert MARKER not in raw.decode() + str(answer_headers)


def test_a_padded_signature_header_is_read_as_http_defines_it(served: tuple[int, list[WebhookEvent]]) -> None:
    body = body_of(event_id="padded-1")
    answer = send_raw(
        served[0],
        b"POST /authgear/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Length: %d\r\nX-Authgear-Body-Signature:   %s \t\r\n\r\n"
        % (len(body), body_signature(body, SECRET).encode())
        + body,
    )
    assert answer.startswith(b"HTTP/1.1 200")


def test_a_huge_declared_body_is_refused_before_it_is_read(served: tuple[int, list[WebhookEvent]]) -> None:
    # Only the headers are sent: the answer comes without the server waiting for 50 MB.
    answer = send_raw(
        served[0],
        b"POST /authgear/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800\r\n"
        b"X-Authgear-Body-Signature: " + b"0" * 64 + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413")


def send_chunked(port: int, body: bytes, signature: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"X-Authgear-Body-Signature": signature, "Transfer-Encoding": "chunked"}
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        connection.request("POST", "/authgear/webhook", body=chunks, headers=headers, encode_chunked=True)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_chunked_body_is_read_up_to_the_cap(served: tuple[int, list[WebhookEvent]]) -> None:
    body = body_of(event_id="chunked-1")
    assert send_chunked(served[0], body, body_signature(body, SECRET)) == 200
    assert "chunked-1" in [event.id for event in served[1]]
    huge = body_of(event_id="chunked-2", payload={"pad": "x" * (1024 * 1024)})
    assert send_chunked(served[0], huge, body_signature(huge, SECRET)) == 413
    assert "chunked-2" not in [event.id for event in served[1]]


def test_a_chunked_body_wins_over_a_content_length(served: tuple[int, list[WebhookEvent]]) -> None:
    # The server reads the chunks up to their end; a Content-Length beside them says nothing (RFC 9112 6.3).
    body = body_of(event_id="chunked-3")
    answer = send_raw(
        served[0],
        b"POST /authgear/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
        b"X-Authgear-Body-Signature: " + body_signature(body, SECRET).encode() + b"\r\n\r\n"
        b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert "chunked-3" in [event.id for event in served[1]]


@pytest.mark.parametrize(
    ("length", "status"), [("9" * 5000, 413), ("0" * 5000 + "5", 401)], ids=["5000-digits", "5000-zeros"]
)
def test_a_content_length_of_thousands_of_digits_is_refused(
    served: tuple[int, list[WebhookEvent]], length: str, status: int
) -> None:
    # int() raises ValueError past 4,300 digits: the answer must still be a 4xx, never a 500.
    body = body_of()
    got, answer_headers, _ = send(served[0], body, {**signed(body), "Content-Length": length})
    assert got == status
    assert answer_headers["content-type"] == "application/json"


def test_the_rest_of_the_app_stays_protected(served: tuple[int, list[WebhookEvent]]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served[0], timeout=10)
    try:
        connection.request("GET", "/")
        assert connection.getresponse().status == 401
    finally:
        connection.close()


def test_the_endpoint_takes_the_dispatcher_options() -> None:
    calls: list[str] = []
    now = [1_790_000_000 + 61.0]
    hooks = WebhookEndpoint(SECRET, max_age=60, clock=lambda: now[0], idempotency=False)

    @hooks.on("user.pre_create")
    def pre_create(event: WebhookEvent) -> Any:
        return event.allow()

    @hooks.on("user.created")
    def created(event: WebhookEvent) -> None:
        calls.append(event.id)

    client = Client(hooks)
    stale = client.post("/", data=body_of("user.pre_create"), headers=signed(body_of("user.pre_create")))
    assert (stale.status_code, stale.get_json()["error"]) == (401, "stale_event")
    old = client.post("/", data=body_of(), headers=signed(body_of()))  # max_age covers non-blocking events too
    assert (old.status_code, old.get_json()["error"]) == (401, "stale_event")
    now[0] = 1_790_000_000 + 59
    for _ in range(2):
        assert client.post("/", data=body_of(), headers=signed(body_of())).status_code == 200
    assert calls == ["evt-1", "evt-1"]


def test_the_endpoint_needs_a_secret() -> None:
    with pytest.raises(ConfigurationError):
        WebhookEndpoint([])


# -- async handlers: plain WSGI has no event loop, so each runs to completion in its own ----------------------


def test_async_handlers_run_to_completion_before_the_answer() -> None:
    seen: list[str] = []
    hooks = WebhookEndpoint(SECRET)

    @hooks.on("user.created")
    async def created(event: WebhookEvent) -> None:
        await asyncio.sleep(0)  # a real suspension, as a database driver's would be
        seen.append(event.id)

    @hooks.on("user.pre_create")
    async def pre_create(event: WebhookEvent) -> Any:
        await asyncio.sleep(0)
        return event.deny("Sign-ups are closed.", "Closed")

    with AppServer(hooks) as server:
        body = body_of(event_id="async-1")
        assert send(server.port, body, signed(body))[0] == 200
        assert seen == ["async-1"]
        assert send(server.port, body, signed(body))[0] == 200  # the same event again: handled once
        assert seen == ["async-1"]
        blocking = body_of("user.pre_create")
        status, _, raw = send(server.port, blocking, signed(blocking))
    assert status == 200
    assert json.loads(raw) == {"is_allowed": False, "reason": "Sign-ups are closed.", "title": "Closed"}


def test_a_handler_that_returns_an_unawaited_coroutine_is_a_failure_not_a_handled_event() -> None:
    calls: list[str] = []

    async def handle(event: WebhookEvent) -> None:
        calls.append(event.id)

    hooks = WebhookEndpoint(SECRET)
    hooks.on("user.created")(lambda event: handle(event))  # not itself async: nobody would await its answer
    with AppServer(hooks) as server:
        body = body_of(event_id="lost-1")
        assert send(server.port, body, signed(body))[0] == 503  # a failure, logged as a lost event
        assert send(server.port, body, signed(body))[0] == 503  # the id was not recorded as handled
    assert calls == []
    assert hooks.failures["user.created"] == 2


def test_an_async_generator_is_refused_when_registered() -> None:
    async def handle(event: WebhookEvent) -> AsyncIterator[None]:
        yield None

    with pytest.raises(ConfigurationError, match="the webhook handler is an async generator"):
        WebhookEndpoint(SECRET).on("user.created")(handle)


def test_a_comma_separated_secret_is_a_rotation() -> None:
    # The endpoint's own docstring passes os.environ["AUTHGEAR_WEBHOOK_SECRET"], which carries "new,old".
    hooks = WebhookEndpoint(f"next-secret-value,{SECRET}")
    hooks.on("user.created")(lambda event: None)
    with AppServer(hooks) as server:
        for secret, event_id in (("next-secret-value", "rot-1"), (SECRET, "rot-2")):
            body = body_of(event_id=event_id)
            headers = {"Content-Type": "application/json", "X-Authgear-Body-Signature": body_signature(body, secret)}
            assert send(server.port, body, headers)[0] == 200
