"""Authgear webhooks: verify a delivery, read its event, build a blocking hook's answer. No Flask here.

Authgear POSTs events to the app and signs each body: ``X-Authgear-Body-Signature`` is the lowercase hex
HMAC-SHA256 of the raw body under the project's webhook secret. Security notes, in plain words:

* The signature is checked over the raw bytes, in constant time, before anything is parsed: a body that does
  not carry a valid signature is never decoded. Bodies over a size cap are refused before they are hashed.
* Several secrets may be configured at once, so a secret can be rotated without refusing deliveries.
* Every failure is an :class:`~flask_authgear.errors.AuthgearError` with a fixed description: nothing of the
  request is echoed back.
* The signature proves the body came from someone holding the secret; it does not stop a replay of a
  captured delivery. Blocking events can be refused when older than ``max_age`` (they are delivered at once,
  so an old one is a replay); non-blocking events are retried by Authgear with the same ``id``, which the
  idempotency store of :mod:`flask_authgear.webhooks.dispatch` recognises. Nothing protects against an
  attacker who has the secret: keep it out of logs and source control.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..core.jose import TokenError, json_object
from ..core.request import WEBHOOK_SIGNATURE_KEY
from ..errors import AuthgearError, ConfigurationError
from ..user import freeze

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "ACKNOWLEDGED",
    "AUTHENTICATION_EVENTS",
    "BLOCKING_EVENTS",
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "USER_MUTATION_EVENTS",
    "InvalidWebhookError",
    "InvalidWebhookSignatureError",
    "StaleWebhookError",
    "WebhookAnswer",
    "WebhookError",
    "WebhookEvent",
    "WebhookHandlerError",
    "WebhookMethodNotAllowedError",
    "WebhookNotHandledError",
    "WebhookTooLargeError",
    "allow",
    "deny",
    "read_body",
    "sign_body",
    "verify_environ",
    "verify_webhook",
    "webhook_secrets",
]

SIGNATURE_HEADER = "X-Authgear-Body-Signature"
#: Largest accepted body. Authgear's events are a few kilobytes; the cap bounds the work of a forged one.
MAX_BODY_BYTES = 1024 * 1024

#: Events Authgear delivers synchronously, before the change is stored, and whose answer it obeys.
USER_MUTATION_EVENTS = frozenset(
    {"user.pre_create", "user.profile.pre_update", "user.pre_schedule_deletion", "user.pre_schedule_anonymization"}
)
AUTHENTICATION_EVENTS = frozenset(
    {"authentication.pre_initialize", "authentication.post_identified", "authentication.pre_authenticated"}
)
JWT_EVENT = "oidc.jwt.pre_create"
ID_TOKEN_EVENT = "oidc.id_token.pre_create"
BLOCKING_EVENTS = USER_MUTATION_EVENTS | AUTHENTICATION_EVENTS | {JWT_EVENT, ID_TOKEN_EVENT}

_HEX = frozenset("0123456789abcdefABCDEF")
#: The headers of every webhook answer, error or not: JSON that no cache keeps.
ANSWER_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))


# -- errors ---------------------------------------------------------------------------------------------------


class WebhookError(AuthgearError):
    """Base of webhook failures. A webhook is not bearer authentication: only a 401 carries a challenge."""

    status_code = 400
    error = "invalid_request"
    description = "The webhook request is invalid."

    def challenge(self, realm: str = "authgear") -> str | None:
        if self.status_code == 401:  # HTTP requires a challenge on every 401
            return f'Signature realm="{realm}"'
        return None


class InvalidWebhookSignatureError(WebhookError):
    """The signature header is missing, malformed or does not match the body under any configured secret."""

    status_code = 401
    error = "invalid_signature"
    description = "The webhook signature is invalid."


class InvalidWebhookError(WebhookError):
    """A correctly signed body that is not an Authgear event (not JSON, not an object, fields of wrong types)."""

    description = "The webhook body is not a valid Authgear event."


class WebhookTooLargeError(WebhookError):
    status_code = 413
    description = "The webhook body is too large."


class WebhookMethodNotAllowedError(WebhookError):
    status_code = 405
    description = "Webhooks are delivered with POST."

    def headers(self, realm: str = "authgear") -> list[tuple[str, str]]:
        return [*super().headers(realm), ("Allow", "POST")]


class StaleWebhookError(WebhookError):
    """A blocking event older than the configured ``max_age``: blocking events arrive at once, so it is a replay."""

    status_code = 401
    error = "stale_event"
    description = "The webhook event is too old."


class WebhookNotHandledError(WebhookError):
    """A blocking event the app has no decision for. 501, so Authgear counts the hook as failed and aborts the
    operation (fail closed) instead of reading a missing answer as consent."""

    status_code = 501
    error = "not_implemented"
    description = "No handler is registered for this blocking event."


class WebhookHandlerError(WebhookError):
    """The app's handler failed. 503, so Authgear retries a non-blocking event and aborts a blocking one."""

    status_code = 503
    error = "temporarily_unavailable"
    description = "The webhook could not be processed."


# -- secrets, body, signature ---------------------------------------------------------------------------------


def webhook_secrets(secret: str | Sequence[str] | None) -> tuple[str, ...]:
    """The configured secrets as a tuple; none at all is a :class:`ConfigurationError`, never an open door."""
    secrets = (secret,) if isinstance(secret, str) else tuple(secret or ())
    if not secrets:
        raise ConfigurationError(
            "no webhook secret is configured: set AUTHGEAR_WEBHOOK_SECRET"
            " (Authgear portal: Advanced > Hooks > Webhook Signature)"
        )
    if not all(isinstance(s, str) and s for s in secrets):
        raise ConfigurationError("webhook_secret must be a non-empty string or a list of them")
    return secrets


def sign_body(body: bytes, secret: str) -> str:
    """The signature Authgear sends for ``body``: lowercase hex HMAC-SHA256 under ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def read_body(environ: WSGIEnvironment) -> bytes:
    """Read a WSGI request's raw body, refusing more than :data:`MAX_BODY_BYTES` before reading it all.

    A stream the server marks as terminated (a chunked body) wins over ``Content-Length``, as in werkzeug. The
    body is put back as a fresh stream, so a framework can still read it afterwards.
    """
    stream = environ["wsgi.input"]
    raw_length = (environ.get("CONTENT_LENGTH") or "").strip()
    if environ.get("wsgi.input_terminated"):
        body = stream.read(MAX_BODY_BYTES + 1)
    elif raw_length:
        if not (raw_length.isascii() and raw_length.isdigit()):  # no sign, no spaces, no non-ASCII digits
            raise WebhookError("The Content-Length header is invalid.")
        digits = raw_length.lstrip("0") or "0"
        # int() raises ValueError past 4,300 digits: a length with more digits than the cap is too large anyway.
        length = int(digits) if len(digits) <= len(str(MAX_BODY_BYTES)) else MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            raise WebhookTooLargeError()
        body = stream.read(length)
    else:
        body = b""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookTooLargeError()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def verify_webhook(body: bytes, signature: str | None, secret: str | Sequence[str]) -> WebhookEvent:
    """Check ``signature`` against the raw ``body`` under any of the secrets, then parse the event.

    Raises:
        WebhookTooLargeError: the body is over :data:`MAX_BODY_BYTES` (413), checked before hashing.
        InvalidWebhookSignatureError: the signature is missing, not 64 hex characters, or wrong (401).
        InvalidWebhookError: a signed body that is not a valid event (400).
        ConfigurationError: no secret is configured.
    """
    secrets = webhook_secrets(secret)
    if len(body) > MAX_BODY_BYTES:
        raise WebhookTooLargeError()
    signature = (signature or "").strip(" \t")  # the whitespace HTTP allows around a header value
    if not signature:
        raise InvalidWebhookSignatureError("The webhook signature is missing.")
    # Hex is case-insensitive, so accepting upper case admits no other body; anything else is not a signature.
    if len(signature) != 64 or not _HEX.issuperset(signature):
        raise InvalidWebhookSignatureError()
    given = signature.lower().encode()
    # Every secret is tried, so the time taken does not tell which one (if any) is close to matching.
    matches = [hmac.compare_digest(sign_body(body, s).encode(), given) for s in secrets]
    if not any(matches):
        raise InvalidWebhookSignatureError()
    return WebhookEvent.parse(body)


def verify_environ(environ: WSGIEnvironment, secret: str | Sequence[str]) -> WebhookEvent:
    """The verified event of a WSGI request: the one path of every adapter (405, 413, 401, 400)."""
    if environ.get("REQUEST_METHOD") != "POST":
        raise WebhookMethodNotAllowedError()
    return verify_webhook(read_body(environ), environ.get(WEBHOOK_SIGNATURE_KEY), secret)


# -- the event ------------------------------------------------------------------------------------------------


def _thaw(value: Any) -> Any:
    """A plain JSON-ready copy of a frozen or user-given structure."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class WebhookEvent:
    """One verified event. Immutable: ``payload`` and ``context`` are read-only mappings, lists are tuples."""

    id: str
    type: str
    seq: int | None
    #: Left out of ``repr``, which may end up in a log: they carry personal data (e-mail, IP address ...).
    payload: Mapping[str, Any] = field(repr=False)
    context: Mapping[str, Any] = field(repr=False)
    #: When Authgear generated the event (``context.timestamp``, kept by retries), or None when absent.
    timestamp: datetime | None

    @classmethod
    def parse(cls, body: bytes) -> WebhookEvent:
        """Parse a body whose signature was already checked; a malformed one raises :class:`InvalidWebhookError`."""
        # The token parser's strict JSON: two parsers that keep different copies of a duplicated key would read
        # two events from one signature, and non-finite numbers cannot be sent back as JSON.
        try:
            frozen = freeze(json_object(body))
        except (TokenError, RecursionError):
            raise InvalidWebhookError() from None
        event_id, event_type, seq = frozen.get("id"), frozen.get("type"), frozen.get("seq")
        payload, context = frozen.get("payload", _EMPTY), frozen.get("context", _EMPTY)
        if not (isinstance(event_id, str) and event_id and isinstance(event_type, str) and event_type):
            raise InvalidWebhookError()
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not -(2**63) <= seq < 2**63):
            raise InvalidWebhookError()
        if not isinstance(payload, Mapping) or not isinstance(context, Mapping):
            raise InvalidWebhookError()
        return cls(event_id, event_type, seq, payload, context, _timestamp(context.get("timestamp")))

    @property
    def user_id(self) -> str | None:
        """The user concerned: ``context.user_id``, else ``payload.user.id``, else None."""
        candidate = self.context.get("user_id")
        if not isinstance(candidate, str) or not candidate:
            user = self.payload.get("user")
            candidate = user.get("id") if isinstance(user, Mapping) else None
        return candidate if isinstance(candidate, str) and candidate else None

    @property
    def is_blocking(self) -> bool:
        """Whether Authgear waits for this event's answer (and obeys it) before going on."""
        return self.type in BLOCKING_EVENTS

    def allow(
        self,
        *,
        standard_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        roles: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        jwt_claims: Mapping[str, Any] | None = None,
        id_token_claims: Mapping[str, Any] | None = None,
        amr: Sequence[str] | None = None,
        rate_limits: Mapping[str, Any] | None = None,
        bot_protection: str | None = None,
    ) -> WebhookAnswer:
        """Let the operation proceed, with the changes this event type supports.

        Args:
            standard_attributes, custom_attributes, roles, groups: ``mutations.user`` for the ``user.*``
                blocking events. Each is given WHOLE: an attribute, role or group left out is removed.
            jwt_claims: claims added to the access token (``oidc.jwt.pre_create``); existing claims cannot change.
            id_token_claims: claims added to the ID token (``oidc.id_token.pre_create``); the same rule.
            amr: ``constraints.amr``, authentication methods to require (``authentication.*`` events).
            rate_limits: ``rate_limits``, e.g. ``{"authentication.general": {"weight": 2}}`` (``authentication.*``).
            bot_protection: ``"always"`` or ``"never"`` (``authentication.*`` events).

        Raises:
            ValueError: an option this event does not support, or a claim that would change an existing one.
        """
        self._require_blocking()
        body: dict[str, Any] = {"is_allowed": True}
        user = {
            name: value
            for name, value in (
                ("standard_attributes", _mapping(standard_attributes, "standard_attributes")),
                ("custom_attributes", _mapping(custom_attributes, "custom_attributes")),
                ("roles", _strings(roles, "roles")),
                ("groups", _strings(groups, "groups")),
            )
            if value is not None
        }
        if user:
            self._require(USER_MUTATION_EVENTS, "user mutations")
            body["mutations"] = {"user": user}
        # Each token event carries its token at payload.<key>.payload and takes it back at mutations.<key>.payload.
        if jwt_claims is not None:
            self._require({JWT_EVENT}, "jwt_claims")
            body["mutations"] = {"jwt": {"payload": self._merged_claims("jwt", jwt_claims)}}
        if id_token_claims is not None:
            self._require({ID_TOKEN_EVENT}, "id_token_claims")
            body["mutations"] = {"id_token": {"payload": self._merged_claims("id_token", id_token_claims)}}
        if amr is not None:
            self._require(AUTHENTICATION_EVENTS, "amr")
            body["constraints"] = {"amr": _strings(amr, "amr")}
        if rate_limits is not None:
            self._require(AUTHENTICATION_EVENTS, "rate_limits")
            body["rate_limits"] = _mapping(rate_limits, "rate_limits")
        if bot_protection is not None:
            self._require(AUTHENTICATION_EVENTS, "bot_protection")
            if bot_protection not in ("always", "never"):
                raise ValueError('bot_protection must be "always" or "never"')
            body["bot_protection"] = {"mode": bot_protection}
        return WebhookAnswer(body)

    def deny(self, reason: str, title: str) -> WebhookAnswer:
        """Abort the operation; ``reason`` and ``title`` are shown to the end user."""
        self._require_blocking()
        return deny(reason, title)

    def _require_blocking(self) -> None:
        if not self.is_blocking:
            raise ValueError(f"{self.type} is not a blocking event: Authgear ignores its answer")

    def _require(self, events: frozenset[str] | set[str], what: str) -> None:
        if self.type not in events:
            raise ValueError(f"{what} are not supported by {self.type} (only {', '.join(sorted(events))})")

    def _merged_claims(self, key: str, claims: Mapping[str, Any]) -> dict[str, Any]:
        """The event's token payload, whole, with ``claims`` added: Authgear refuses a changed or dropped claim."""
        token = self.payload.get(key)
        existing = token.get("payload") if isinstance(token, Mapping) else None
        if not isinstance(existing, Mapping):
            raise ValueError(f"this {self.type} event carries no token payload to add claims to")
        merged: dict[str, Any] = _thaw(existing)
        for name, value in (_mapping(claims, "claims") or {}).items():
            if merged.setdefault(name, value) != value:  # an existing claim keeps its value, or it is an error
                raise ValueError(f"claim {name!r} already exists in the token and cannot be changed")
        return merged


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidWebhookError()
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidWebhookError() from None


def _mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping with string keys")
    out: dict[str, Any] = _thaw(value)
    return out


def _strings(value: Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return list(value)


# -- answers --------------------------------------------------------------------------------------------------


class WebhookAnswer:
    """What a blocking hook answers. Render with :meth:`to_dict` or :meth:`to_json`."""

    __slots__ = ("_body",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = json.dumps(_thaw(body), separators=(",", ":"), allow_nan=False).encode()

    def to_dict(self) -> dict[str, Any]:
        """A fresh copy of the JSON body."""
        out: dict[str, Any] = json.loads(self._body)
        return out

    def to_json(self) -> bytes:
        return self._body

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookAnswer) and other._body == self._body

    def __repr__(self) -> str:
        return f"WebhookAnswer({self._body.decode()})"


#: The answer to a non-blocking event: Authgear only reads the status.
ACKNOWLEDGED = WebhookAnswer({})


def allow() -> WebhookAnswer:
    """``{"is_allowed": true}``. For mutations, constraints and the like, use :meth:`WebhookEvent.allow`."""
    return WebhookAnswer({"is_allowed": True})


def deny(reason: str, title: str) -> WebhookAnswer:
    """``{"is_allowed": false, "reason": ..., "title": ...}``; both are shown to the end user, and required."""
    if not (isinstance(reason, str) and reason.strip() and isinstance(title, str) and title.strip()):
        raise ValueError("deny() needs a non-empty reason and title: Authgear shows them to the end user")
    return WebhookAnswer({"is_allowed": False, "reason": reason, "title": title})
