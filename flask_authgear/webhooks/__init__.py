"""Authgear webhooks: verify a delivery, read its event, build a blocking hook's answer. No Flask here.

Authgear POSTs events to the app and signs each body: ``X-Authgear-Body-Signature`` is the lowercase hex
HMAC-SHA256 of the raw body under the project's webhook secret. Security notes, in plain words:

* The signature is checked over the raw bytes, in constant time, before anything is parsed: a body that does
  not carry a valid signature is never decoded. Bodies over a size cap are refused before they are hashed.
* Several secrets may be configured at once, so a secret can be rotated without refusing deliveries.
* Every failure is an :class:`~flask_authgear.errors.AuthgearError` with a fixed description: nothing of the
  request is echoed back.
* The signature proves the body came from someone holding the secret; it does not stop a replay of a
  captured delivery. Events can be refused when older than ``max_age`` (Authgear sends each one as it happens,
  once, so an old one is a replay), and the idempotency store of :mod:`flask_authgear.webhooks.dispatch`
  recognises an ``id`` already handled. Nothing protects against an attacker who has the secret: keep it out of
  logs and source control.

The modules, one concept each: :mod:`~.catalogue` (the event types), :mod:`~.signature`, :mod:`~.event`,
:mod:`~.answers`, :mod:`~.errors` (each failure's status), :mod:`~.dispatch` (the rules of each answer), and
the adapters :mod:`~.flask` and :mod:`~.wsgi`.
"""

from __future__ import annotations

from .answers import WebhookAnswer
from .catalogue import BLOCKING_EVENTS, EVENT_TYPES, NON_BLOCKING_EVENTS
from .errors import WebhookError
from .event import WebhookEvent
from .signature import MAX_BODY_BYTES, SIGNATURE_HEADER, sign_body, verify_webhook, webhook_secrets

__all__ = [
    "BLOCKING_EVENTS",
    "EVENT_TYPES",
    "MAX_BODY_BYTES",
    "NON_BLOCKING_EVENTS",
    "SIGNATURE_HEADER",
    "WebhookAnswer",
    "WebhookError",
    "WebhookEvent",
    "sign_body",
    "verify_webhook",
    "webhook_secrets",
]
