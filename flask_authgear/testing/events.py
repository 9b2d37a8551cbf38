"""Authgear webhook events for tests: sample payloads, the signed body, and delivery to an app or a URL.

Authgear POSTs ``{"id", "seq", "type", "payload", "context"}`` to the app with ``X-Authgear-Body-Signature``,
the lowercase hex HMAC-SHA256 of the exact body bytes keyed with the project's webhook secret. The local
server sends events the same way (:meth:`AuthgearTestServer.send_event`), so an app's webhook handler is tested
against what Authgear sends, signature included.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import requests
from werkzeug.test import Client

from ..user import CLAIM_CAN_REAUTHENTICATE, CLAIM_IS_ANONYMOUS, CLAIM_IS_VERIFIED, CLAIM_ROLES
from ..webhooks.answers import answer_problem
from ..webhooks.catalogue import (
    BLOCKING_EVENTS,
    EVENT_TYPES,
    ID_TOKEN_EVENT,
    JWT_EVENT,
    NON_BLOCKING_TIMEOUT,
    SYNC_HOOK_TIMEOUT,
)
from ..webhooks.signature import SIGNATURE_HEADER, sign_body

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "EventResponse",
    "EventTarget",
    "HookError",
    "access_token_claims",
    "apply_jwt_mutations",
    "sample_identity",
    "sample_payload",
    "sample_session",
    "sample_user",
    "send_signed_event",
]

#: Where an event goes: an http(s) URL, or a Flask app or any WSGI app (called in process).
EventTarget: TypeAlias = "str | WSGIApplication"

_CREATED_AT = "2026-01-01T00:00:00Z"
#: The time of the samples (``_CREATED_AT``), so a sample payload is the same every time it is built.
_SAMPLE_TIME = 1_767_225_600
_SAMPLE_ISSUER = "https://test.authgear.local"
_SAMPLE_CLIENT_ID = "test-client"


def access_token_claims(
    sub: str,
    *,
    issuer: str,
    client_id: str,
    roles: Iterable[str] = (),
    is_verified: bool = True,
    is_anonymous: bool = False,
    can_reauthenticate: bool = True,
    expires_in: float = 1800,
    amr: Iterable[str] | None = ("pwd",),
    auth_time: float | None = None,
    now: int | None = None,
    jti: str | None = None,
    **claims: Any,
) -> dict[str, Any]:
    """The claims of an Authgear access token: what the local server signs, and what its ``oidc.jwt.pre_create``
    event (and the sample of that event) carries at ``payload.jwt.payload``."""
    now = int(time.time()) if now is None else now
    body: dict[str, Any] = {
        "iss": issuer,
        "aud": [issuer],
        "sub": sub,
        "iat": now,
        "exp": int(now + expires_in),
        "auth_time": int(auth_time if auth_time is not None else now),
        "client_id": client_id,
        "scope": "openid offline_access",
        "jti": jti or secrets.token_hex(16),
        CLAIM_IS_ANONYMOUS: is_anonymous,
        CLAIM_IS_VERIFIED: is_verified,
        CLAIM_CAN_REAUTHENTICATE: can_reauthenticate,
        CLAIM_ROLES: list(roles),
    }
    amr_list = list(amr or ())
    if amr_list:  # Authgear omits amr when it is empty
        body["amr"] = amr_list
    body.update(claims)
    return body


def sample_user(
    user_id: str = "user-1",
    *,
    roles: list[str] | None = None,
    is_anonymous: bool = False,
    is_verified: bool = True,
    can_reauthenticate: bool = True,
) -> dict[str, Any]:
    """``payload.user`` as Authgear sends it (``pkg/api/model/user.go``)."""
    return {
        "id": user_id,
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "last_login_at": _CREATED_AT,
        "is_anonymous": is_anonymous,
        "is_verified": is_verified,
        "is_disabled": False,
        "is_deactivated": False,
        "is_anonymized": False,
        "can_reauthenticate": can_reauthenticate,
        "standard_attributes": {
            "sub": user_id,
            "email": "user@example.com",
            "email_verified": is_verified,
            "updated_at": _SAMPLE_TIME,
        },
        "custom_attributes": {},
        "x_web3": {},
        "roles": list(roles or []),
        "groups": [],
    }


def sample_identity(kind: str = "email", user_id: str = "user-1") -> dict[str, Any]:
    """An identity of the user (``login_id`` for email, phone and username; ``oauth``; ``biometric``)."""
    claims: dict[str, Any] = {
        "email": {"email": "user@example.com"},
        "phone": {"phone_number": "+85298765432"},
        "username": {"preferred_username": "user"},
        "oauth": {"email": "user@example.com"},
        "biometric": {},
    }.get(kind, {})
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}/{kind}")),
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "type": kind if kind in ("oauth", "biometric") else "login_id",
        "claims": claims,
    }


def sample_session(user_id: str = "user-1", amr: Iterable[str] = ("pwd", "x_primary_password")) -> dict[str, Any]:
    """``payload.session`` as Authgear sends it (``pkg/api/model/session.go``: its own camelCase names)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}/session")),
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "type": "idp",
        "amr": list(amr),
        "lastAccessedAt": _CREATED_AT,
        "createdByIP": "127.0.0.1",
        "lastAccessedByIP": "127.0.0.1",
        "lastAccessedByIPCountryCode": "",
        "lastAccessedByIPEnglishCountryName": "",
        "clientID": _SAMPLE_CLIENT_ID,
        "displayName": "flask-authgear-test",
    }


def _authentication_context(event_type: str, user_id: str) -> dict[str, Any]:
    """``payload.authentication_context``: who is signing in, and what they asserted so far."""
    identified = event_type != "authentication.pre_initialize"
    authenticated = event_type == "authentication.pre_authenticated"
    authenticator = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}/password")),
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "user_id": user_id,
        "type": "password",
        "is_default": True,
        "kind": "primary",
    }
    return {
        "authentication_flow": {"type": "login", "name": "default"},
        "user": sample_user(user_id) if identified else None,
        "asserted_identifications": (
            [{"identification": "email", "identity": sample_identity("email", user_id), "id_token": None}]
            if identified
            else []
        ),
        "asserted_authentications": (
            [{"authentication": "primary_password", "authenticator": authenticator}] if authenticated else []
        ),
        "amr": ["pwd", "x_primary_password"] if authenticated else [],
    }


def sample_payload(event_type: str, user_id: str = "user-1") -> dict[str, Any]:
    """A payload of ``event_type`` with the fields of Authgear's own (``pkg/api/event``), for ``user_id``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    user = sample_user(user_id)
    if event_type.startswith("identity."):
        kind, change = event_type.split(".")[1:]
        if change == "updated":
            return {
                "user": user,
                "old_identity": sample_identity(kind, user_id),
                "new_identity": sample_identity(kind, user_id + "-new"),
            }
        return {"user": user, "identity": sample_identity(kind, user_id)}
    if event_type.startswith("authentication."):
        payload: dict[str, Any] = {"authentication_context": _authentication_context(event_type, user_id)}
        if event_type == "authentication.post_identified":
            payload["identification"] = payload["authentication_context"]["asserted_identifications"][0]
        return payload
    if event_type == "usage.alert.triggered":
        usage = {"name": "sms", "action": "alert", "period": "month", "quota": 100, "current_value": 80}
        return {"usage": {**usage, "plan_name": "free"}}
    identities = [sample_identity("email", user_id)]
    if event_type in ("user.pre_create", "user.created"):
        return {"user": user, "identities": identities}
    if event_type == "user.anonymous.promoted":
        anonymous = sample_user(user_id, is_anonymous=True, is_verified=False)
        return {"anonymous_user": anonymous, "user": user, "identities": identities}
    if event_type in ("user.authenticated", "user.reauthenticated"):
        return {"user": user, "session": sample_session(user_id)}
    if event_type == JWT_EVENT:
        claims = access_token_claims(
            user_id,
            issuer=_SAMPLE_ISSUER,
            client_id=_SAMPLE_CLIENT_ID,
            now=_SAMPLE_TIME,
            jti=uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}/jti").hex,
        )
        return {"user": user, "identities": identities, "jwt": {"payload": claims}}
    if event_type == ID_TOKEN_EVENT:
        claims = {
            "iss": _SAMPLE_ISSUER,
            "aud": [_SAMPLE_CLIENT_ID],
            "sub": user_id,
            "iat": _SAMPLE_TIME,
            "exp": _SAMPLE_TIME + 3600,
            "auth_time": _SAMPLE_TIME,
            "amr": ["pwd"],
        }
        return {"user": user, "identities": identities, "id_token": {"payload": claims}}
    return {"user": user}


class HookError(RuntimeError):
    """A blocking hook refused, failed or answered something Authgear would not accept."""


def _judge_answer(event_type: str, answer: EventResponse) -> dict[str, Any]:
    """A blocking hook's answer judged as Authgear judges it: the allowing answer, or :class:`HookError`.

    Authgear aborts the operation on a non-2xx status, on an answer its schema for ``event_type`` refuses (the
    rule of :func:`flask_authgear.webhooks.answers.answer_problem`, which also checks the answers the library
    builds) and on ``is_allowed: false``.
    """
    if not answer.ok:
        raise HookError(f"the {event_type} hook answered HTTP {answer.status}: Authgear aborts the operation")
    body = answer.json
    problem = answer_problem(event_type, body)
    if problem is not None:
        raise HookError(f"Authgear refuses the answer of the {event_type} hook: {problem}")
    if not body["is_allowed"]:
        raise HookError(f"the {event_type} hook refused: {body.get('title')}: {body.get('reason')}")
    return dict(body)


def apply_jwt_mutations(claims: Mapping[str, Any], answer: EventResponse) -> dict[str, Any]:
    """The claims after an ``oidc.jwt.pre_create`` answer, as Authgear applies it.

    The answer is judged by :func:`_judge_answer`. ``mutations.jwt.payload`` is the WHOLE payload: it may add
    fields, never change or drop one of the event's.
    """
    body = _judge_answer(JWT_EVENT, answer)
    mutated = body.get("mutations", {}).get("jwt", {}).get("payload", claims)
    dropped = sorted(k for k in claims if k not in mutated)
    changed = sorted(k for k in claims if k in mutated and mutated[k] != claims[k])
    if dropped or changed:
        raise HookError(
            "mutations.jwt.payload may only add fields; "
            f"it drops {dropped or 'none'} and changes {changed or 'none'} of the existing ones"
        )
    return dict(mutated)


@dataclass
class EventResponse:
    """What the app answered to an event: status, headers and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _deliver(
    target: EventTarget, body: bytes, headers: Mapping[str, str], *, path: str = "/", timeout: float = 10.0
) -> EventResponse:
    """POST ``body`` to an http(s) URL, or to ``path`` of a Flask app (its test client) or of any WSGI app."""
    if isinstance(target, str):
        if not target.startswith(("http://", "https://")):
            raise ValueError("an event target URL must be http:// or https://")
        answer = requests.post(target, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False)
        return EventResponse(answer.status_code, dict(answer.headers), answer.content)
    if not callable(target):
        raise TypeError("an event target is a URL, a Flask app or a WSGI app")
    test_client = getattr(target, "test_client", None)  # a Flask app: its own test client, app context and all
    client = test_client() if callable(test_client) else Client(target)
    reply = client.post(path, data=body, headers=dict(headers))
    return EventResponse(reply.status_code, dict(reply.headers), reply.get_data())


def send_signed_event(
    target: EventTarget,
    type: str,
    payload: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    secret: str,
    seq: int,
    id: str | None = None,
    timestamp: int | None = None,
    app_id: str = "test-app",
    client_id: str = _SAMPLE_CLIENT_ID,
    path: str = "/",
    timeout: float | None = None,
) -> EventResponse:
    """POST an Authgear event signed with ``secret`` to ``target`` (see :meth:`AuthgearTestServer.send_event`,
    which fills ``secret``, ``seq`` and the project's ids in; the CLI calls this directly, needing no keys).

    The event is shaped as Authgear's (``pkg/lib/event``, ``pkg/api/event/context.go``): its ``id`` is ``seq`` as
    16 lowercase hex digits unless given; ``context`` always has ``user_id`` (None when the event has no user),
    ``audit_context`` and ``preferred_languages``, and ``oauth`` only when given. ``timeout`` defaults to how long
    Authgear waits: 5 s for a blocking event (its default ``sync_hook_timeout_seconds``), 60 s otherwise.
    """
    body = dict(payload) if payload is not None else sample_payload(type)
    event_context: dict[str, Any] = {
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "user_id": _user_id(body),
        "triggered_by": "user",
        "audit_context": {"http_url": ""},
        "preferred_languages": [],
        "language": "en",
        "ip_address": "127.0.0.1",
        "geo_location_code": None,
        "user_agent": "flask-authgear-test",
        "app_id": app_id,
        "client_id": client_id,
    }
    event_context.update(context or {})
    event = {
        "id": f"{seq:016x}" if id is None else id,
        "seq": seq,
        "type": type,
        "payload": body,
        "context": event_context,
    }
    raw = json.dumps(event, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(raw, secret)}
    if timeout is None:
        timeout = SYNC_HOOK_TIMEOUT if type in BLOCKING_EVENTS else NON_BLOCKING_TIMEOUT
    return _deliver(target, raw, headers, path=path, timeout=timeout)


def _user_id(payload: Mapping[str, Any]) -> str | None:
    """The user an event is about, as Authgear fills ``context.user_id`` in: None when it has none."""
    context = payload.get("authentication_context")
    for holder in (payload, context if isinstance(context, Mapping) else {}):
        user = holder.get("user")
        if isinstance(user, Mapping) and isinstance(user.get("id"), str):
            return str(user["id"])
    return None
