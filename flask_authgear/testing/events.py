"""Authgear webhook events for tests: sample payloads, the signed body, and delivery to an app or a URL.

Authgear POSTs ``{"id", "seq", "type", "payload", "context"}`` to the app with ``X-Authgear-Body-Signature``,
the lowercase hex HMAC-SHA256 of the exact body bytes keyed with the project's webhook secret. The local
server sends events the same way (:meth:`AuthgearTestServer.send_event`), so an app's webhook handler is tested
against what Authgear sends, signature included.
"""

from __future__ import annotations

import hashlib
import itertools
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
    SYNC_HOOK_TOTAL_TIMEOUT,
)
from ..webhooks.signature import SIGNATURE_HEADER, sign_body

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "EventResponse",
    "EventSender",
    "EventTarget",
    "HookError",
    "access_token_claims",
    "sample_payload",
    "sample_user",
    "user_flags",
]

#: Where an event goes: an http(s) URL, or a Flask app or any WSGI app (called in process).
EventTarget: TypeAlias = "str | WSGIApplication"

_CREATED_AT = "2026-01-01T00:00:00Z"
#: The time of the samples (``_CREATED_AT``), so a sample payload is the same every time it is built.
_SAMPLE_TIME = 1_767_225_600
_SAMPLE_ISSUER = "https://test.authgear.local"
_SAMPLE_CLIENT_ID = "test-client"
#: The claims of each kind of identity (``login_id`` for email, phone and username; a biometric one has none).
_IDENTITY_CLAIMS: dict[str, dict[str, str]] = {
    "email": {"email": "user@example.com"},
    "phone": {"phone_number": "+85298765432"},
    "username": {"preferred_username": "user"},
    "oauth": {"email": "user@example.com"},
}


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
        "jti": jti or secrets.token_hex(32),  # as Authgear's: the SHA-256 hex of the opaque token, 64 digits
        CLAIM_IS_ANONYMOUS: is_anonymous,
        CLAIM_IS_VERIFIED: is_verified,
        CLAIM_CAN_REAUTHENTICATE: can_reauthenticate,
        CLAIM_ROLES: list(roles),
    }
    if amr:  # Authgear omits amr when it is empty
        body["amr"] = list(amr)
    return {**body, **claims}


def user_flags(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The user's roles and flags as an access token's claims carry them: keywords of :func:`sample_user` and of
    :class:`~flask_authgear.testing.TestSession`."""
    return {
        "roles": tuple(claims.get(CLAIM_ROLES, ())),
        "is_anonymous": bool(claims.get(CLAIM_IS_ANONYMOUS)),
        "is_verified": bool(claims.get(CLAIM_IS_VERIFIED)),
        "can_reauthenticate": bool(claims.get(CLAIM_CAN_REAUTHENTICATE)),
    }


def _record(user_id: str, name: str) -> dict[str, Any]:
    """The fields every record of a user has in Authgear's models: a stable id, and when it was made."""
    record_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}/{name}"))
    return {"id": record_id, "created_at": _CREATED_AT, "updated_at": _CREATED_AT}


def sample_user(
    user_id: str = "user-1",
    *,
    roles: Iterable[str] = (),
    is_anonymous: bool = False,
    is_verified: bool = True,
    can_reauthenticate: bool = True,
) -> dict[str, Any]:
    """``payload.user`` as Authgear sends it (``pkg/api/model/user.go``)."""
    return {
        **_record(user_id, "user"),
        "id": user_id,
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
        "roles": list(roles),
        "groups": [],
    }


def _identity(kind: str, user_id: str) -> dict[str, Any]:
    """An identity of the user (``login_id`` for email, phone and username; ``oauth``; ``biometric``)."""
    identity_type = kind if kind in ("oauth", "biometric") else "login_id"
    return {**_record(user_id, kind), "type": identity_type, "claims": dict(_IDENTITY_CLAIMS.get(kind, {}))}


def _session(user_id: str) -> dict[str, Any]:
    """``payload.session`` as Authgear sends it (``pkg/api/model/session.go``: its own camelCase names)."""
    return {
        **_record(user_id, "session"),
        "type": "idp",
        "amr": ["pwd", "x_primary_password"],
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
    identification = {"identification": "email", "identity": _identity("email", user_id), "id_token": None}
    authenticator = {
        **_record(user_id, "password"),
        "user_id": user_id,
        "type": "password",
        "is_default": True,
        "kind": "primary",
    }
    authentication = {"authentication": "primary_password", "authenticator": authenticator}
    return {
        "authentication_flow": {"type": "login", "name": "default"},
        "user": sample_user(user_id) if identified else None,
        "asserted_identifications": [identification] if identified else [],
        "asserted_authentications": [authentication] if authenticated else [],
        "amr": ["pwd", "x_primary_password"] if authenticated else [],
    }


def sample_payload(event_type: str, user_id: str = "user-1") -> dict[str, Any]:
    """A payload of ``event_type`` with the fields of Authgear's own (``pkg/api/event``), for ``user_id``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    user = sample_user(user_id)
    identities = [_identity("email", user_id)]
    if event_type.startswith("identity."):
        kind, change = event_type.split(".")[1:]
        if change == "updated":
            old, new = _identity(kind, user_id), _identity(kind, user_id + "-new")
            return {"user": user, "old_identity": old, "new_identity": new}
        return {"user": user, "identity": _identity(kind, user_id)}
    if event_type.startswith("authentication."):
        context = _authentication_context(event_type, user_id)
        if event_type == "authentication.post_identified":
            return {"authentication_context": context, "identification": context["asserted_identifications"][0]}
        return {"authentication_context": context}
    if event_type == "usage.alert.triggered":
        usage = {"name": "sms", "action": "alert", "period": "month", "quota": 100, "current_value": 80}
        return {"usage": {**usage, "plan_name": "free"}}
    if event_type in ("user.pre_create", "user.created"):
        return {"user": user, "identities": identities}
    if event_type == "user.anonymous.promoted":
        anonymous = sample_user(user_id, is_anonymous=True, is_verified=False)
        return {"anonymous_user": anonymous, "user": user, "identities": identities}
    if event_type in ("user.authenticated", "user.reauthenticated"):
        return {"user": user, "session": _session(user_id)}
    claims = access_token_claims(
        user_id,
        issuer=_SAMPLE_ISSUER,
        client_id=_SAMPLE_CLIENT_ID,
        now=_SAMPLE_TIME,
        jti=hashlib.sha256(f"{user_id}/token".encode()).hexdigest(),  # a token's hash, as Authgear's jti is
    )
    if event_type == JWT_EVENT:
        return {"user": user, "identities": identities, "jwt": {"payload": claims}}
    if event_type == ID_TOKEN_EVENT:
        # An ID token is for the client, lives an hour, and carries the user's claims (none of them here).
        id_token = {name: claims[name] for name in ("iss", "sub", "iat", "auth_time", "amr")}
        id_token.update(aud=[_SAMPLE_CLIENT_ID], exp=_SAMPLE_TIME + 3600)
        return {"user": user, "identities": identities, "id_token": {"payload": id_token}}
    return {"user": user}


class HookError(RuntimeError):
    """A blocking hook refused, failed or answered something Authgear would not accept."""


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


class EventSender:
    """An Authgear project's side of webhooks: it signs and sends events, and asks its ``oidc.jwt.pre_create``
    hook before it mints a token. :class:`~flask_authgear.testing.AuthgearTestServer` is one; the ``event``
    command uses one alone, needing no keys."""

    def __init__(self, webhook_secret: str | None = None) -> None:
        self.client_id = _SAMPLE_CLIENT_ID
        self.app_id = "test-app"
        #: Keys the ``X-Authgear-Body-Signature`` of the events this project sends; set it to the app's.
        self.webhook_secret = webhook_secret or secrets.token_hex(32)
        #: Where minting sends ``oidc.jwt.pre_create`` (a URL, a Flask or WSGI app; None: no hook), at which path.
        self.jwt_hook: EventTarget | None = None
        self.jwt_hook_path = "/"
        #: The project's ``hook.sync_hook_timeout_seconds`` and ``sync_hook_total_timeout_seconds`` (Authgear's
        #: defaults): how long a blocking hook may take, alone and all hooks of one event together.
        self.sync_hook_timeout = SYNC_HOOK_TIMEOUT
        self.sync_hook_total_timeout = SYNC_HOOK_TOTAL_TIMEOUT
        self._seq = itertools.count(1)

    def send_event(
        self,
        target: EventTarget,
        type: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        seq: int | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        path: str = "/",
        timeout: float | None = None,
    ) -> EventResponse:
        """POST a signed Authgear event to ``target``: an http(s) URL, a Flask app or a WSGI app (at ``path``).

        The event is shaped as Authgear's (``pkg/lib/event``, ``pkg/api/event/context.go``). ``payload`` defaults
        to a sample of ``type``; ``context`` entries replace the defaults (``user_id`` is None when the event has
        no user; ``oauth`` is there only when given); ``secret`` defaults to :attr:`webhook_secret` (give another
        to test a bad signature). ``seq`` defaults to the next of this project, and ``id`` to ``seq`` in 16 hex
        digits, as Authgear numbers its events. Authgear sends an event once; the same ``id`` and ``timestamp``
        sent again are what a replay of a captured delivery, or the same event at a second hook URL of the app,
        looks like. ``timeout`` defaults to how long Authgear waits: for a blocking event, :attr:`sync_hook_timeout`
        within :attr:`sync_hook_total_timeout` (5 s by Authgear's defaults), 60 s otherwise.
        """
        seq = next(self._seq) if seq is None else seq
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
            "app_id": self.app_id,
            "client_id": self.client_id,
            **(context or {}),
        }
        event = {"id": f"{seq:016x}" if id is None else id, "seq": seq, "type": type, "payload": body}
        raw = json.dumps({**event, "context": event_context}, separators=(",", ":")).encode()
        signature = sign_body(raw, self.webhook_secret if secret is None else secret)
        if timeout is None:  # a blocking event's one hook has the budget of all the event's hooks too
            blocking = min(self.sync_hook_timeout, self.sync_hook_total_timeout)
            timeout = blocking if type in BLOCKING_EVENTS else NON_BLOCKING_TIMEOUT
        return _deliver(target, raw, {"Content-Type": "application/json", SIGNATURE_HEADER: signature}, path, timeout)

    def _jwt_pre_create(self, hook: EventTarget, claims: dict[str, Any]) -> dict[str, Any]:
        """The claims after the ``oidc.jwt.pre_create`` hook, asked as Authgear asks it before it signs; raises
        :class:`HookError`.

        The answer is judged by :func:`_judge_answer`. ``mutations.jwt.payload`` is the WHOLE payload: it may add
        fields, never change or drop one of the event's.
        """
        user = sample_user(claims["sub"], **user_flags(claims))
        payload = {"user": user, "identities": [_identity("email", claims["sub"])], "jwt": {"payload": claims}}
        try:
            answer = self.send_event(hook, JWT_EVENT, payload, path=self.jwt_hook_path)
        except requests.RequestException as exc:  # Authgear fails the token too when its hook is unreachable
            raise HookError(f"the {JWT_EVENT} hook could not be reached: {type(exc).__name__}") from exc
        mutated = _judge_answer(JWT_EVENT, answer).get("mutations", {}).get("jwt", {}).get("payload", claims)
        dropped = sorted(k for k in claims if k not in mutated)
        changed = sorted(k for k in claims if k in mutated and mutated[k] != claims[k])
        if dropped or changed:
            raise HookError(
                "mutations.jwt.payload may only add fields; "
                f"it drops {dropped or 'none'} and changes {changed or 'none'} of the existing ones"
            )
        return dict(mutated)


def _deliver(target: EventTarget, body: bytes, headers: dict[str, str], path: str, timeout: float) -> EventResponse:
    """POST ``body`` to an http(s) URL, or to ``path`` of a Flask app or any WSGI app."""
    if isinstance(target, str):
        if not target.startswith(("http://", "https://")):
            raise ValueError("an event target URL must be http:// or https://")
        answer = requests.post(target, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        return EventResponse(answer.status_code, dict(answer.headers), answer.content)
    if not callable(target):
        raise TypeError("an event target is a URL, a Flask app or a WSGI app")
    reply = Client(target).post(path, data=body, headers=headers)
    return EventResponse(reply.status_code, dict(reply.headers), reply.get_data())


def _user_id(payload: Mapping[str, Any]) -> str | None:
    """The user an event is about, as Authgear fills ``context.user_id`` in: None when it has none."""
    context = payload.get("authentication_context")
    for holder in (payload, context if isinstance(context, Mapping) else {}):
        user = holder.get("user")
        if isinstance(user, Mapping) and isinstance(user.get("id"), str):
            return str(user["id"])
    return None
