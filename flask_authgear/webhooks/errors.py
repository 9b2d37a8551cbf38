"""Webhook failures: each knows its status, its error code and its fixed description, never echoing the request."""

from __future__ import annotations

from ..errors import AuthgearError

__all__ = [
    "InvalidWebhookError",
    "InvalidWebhookSignatureError",
    "StaleWebhookError",
    "WebhookError",
    "WebhookHandlerError",
    "WebhookMethodNotAllowedError",
    "WebhookNotHandledError",
    "WebhookTooLargeError",
]


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
    """An event older than the configured ``max_age``: Authgear sends each event as it happens, so it is a replay."""

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
    """The app's handler failed. 503: Authgear aborts the operation of a blocking event, and writes a failed
    delivery to its log for a non-blocking one. It does not send either event again, so no ``Retry-After``."""

    status_code = 503
    error = "temporarily_unavailable"
    description = "The webhook could not be processed."

    def headers(self, realm: str = "authgear") -> list[tuple[str, str]]:
        return [header for header in super().headers(realm) if header[0] != "Retry-After"]
