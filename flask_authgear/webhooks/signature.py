"""The signature of a delivery: ``X-Authgear-Body-Signature``, checked over the raw body before it is parsed."""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import LimitedStream

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
    """Read a WSGI request's raw body, never more than one byte past :data:`MAX_BODY_BYTES`, which
    :func:`verify_webhook` refuses.

    A stream the server marks as terminated (a chunked body) wins over ``Content-Length``, as in werkzeug, whose
    ``LimitedStream`` reads either in as many reads as the server needs and tells a client that left early. The
    body is put back as a fresh stream, so a framework can still read it afterwards.
    """
    if environ.get("wsgi.input_terminated"):
        # werkzeug stops at a maximum without a word: one byte past the cap shows a body that is too large.
        stream = LimitedStream(environ["wsgi.input"], MAX_BODY_BYTES + 1, is_max=True)
    else:
        stream = LimitedStream(environ["wsgi.input"], _content_length(environ.get("CONTENT_LENGTH")))
    try:
        body = stream.read()
    except ClientDisconnected:
        raise WebhookError("The request body ended before it was complete.") from None
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _content_length(header: str | None) -> int:
    """The body's length, 0 without the header; refused before anything is read when malformed or over the cap.

    werkzeug takes a malformed or over-long length as 0, which would hide a broken sender behind a signature error."""
    raw = (header or "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):  # no sign, no spaces, no non-ASCII digits
        raise WebhookError("The Content-Length header is invalid.")
    digits = raw.lstrip("0") or "0"
    # int() raises ValueError past 4,300 digits: a length with more digits than the cap is too large anyway.
    if len(digits) > len(str(MAX_BODY_BYTES)) or int(digits) > MAX_BODY_BYTES:
        raise WebhookTooLargeError()
    return int(digits)


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
    # Hex is case-insensitive, so accepting upper case admits no other body. Anything that is not 64 hex digits
    # (a character that UTF-8 cannot encode becomes "?") matches no digest: refused below as a wrong one is.
    given = signature.lower().encode(errors="replace")
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
