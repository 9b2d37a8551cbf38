"""The signature of a delivery: ``X-Authgear-Body-Signature``, checked over the raw body before it is parsed."""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from werkzeug.datastructures import EnvironHeaders

from ..config import secret_list
from ..core.request import SIGNATURE_HEADER
from ..errors import ConfigurationError
from .errors import (
    InvalidWebhookSignatureError,
    WebhookError,
    WebhookMethodNotAllowedError,
    WebhookTooLargeError,
)
from .event import WebhookEvent

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "read_body",
    "sign_body",
    "verify_environ",
    "verify_webhook",
    "webhook_secrets",
]

#: Largest accepted body. Authgear's events are a few kilobytes; the cap bounds the work of a forged one.
MAX_BODY_BYTES = 1024 * 1024

_HEX = frozenset("0123456789abcdefABCDEF")


def webhook_secrets(secret: str | Sequence[str] | None, what: str = "webhook_secret") -> tuple[str, ...]:
    """The secrets as a tuple, read as the ``webhook_secret`` setting reads them (``"new,old"`` is two, during a
    rotation); none at all is a :class:`ConfigurationError`, never an open door. ``what`` names the source in
    messages, which never show a secret."""
    secrets = secret_list(() if secret is None else secret, what)
    if not secrets:
        raise ConfigurationError(
            "no webhook secret is configured: set AUTHGEAR_WEBHOOK_SECRET"
            " (Authgear portal: Advanced > Hooks > Webhook Signature)"
        )
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


def verify_environ(environ: WSGIEnvironment, secret: str | Sequence[str], body: bytes | None = None) -> WebhookEvent:
    """The verified event of a WSGI request: the one path of every adapter (405, 413, 401, 400).

    ``body`` is the request body when the framework has already read it from the stream (which is then empty):
    those exact bytes are checked, under the same size cap.
    """
    if environ.get("REQUEST_METHOD") != "POST":
        raise WebhookMethodNotAllowedError()
    raw = read_body(environ) if body is None else body
    return verify_webhook(raw, EnvironHeaders(environ).get(SIGNATURE_HEADER), secret)
