"""A WSGI app that receives Authgear webhooks for any framework: mount it at the URL configured in Authgear."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from werkzeug.http import HTTP_STATUS_CODES

from ..errors import AuthgearError
from . import (
    MAX_BODY_BYTES,
    SIGNATURE_ENVIRON_KEY,
    WebhookMethodNotAllowedError,
    read_body,
    verify_webhook,
    webhook_secrets,
)
from .dispatch import H, Handler, IdempotencyStore, WebhookHandlers

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WebhookEndpoint"]

logger = logging.getLogger("flask_authgear")


class WebhookEndpoint:
    """Verify each POSTed delivery, call the handler of its event type, answer as Authgear expects.

    .. code-block:: python

        hooks = WebhookEndpoint(secret=os.environ["AUTHGEAR_WEBHOOK_SECRET"])

        @hooks.on("user.created")
        def created(event): ...

        app = DispatcherMiddleware(app, {"/authgear/webhook": hooks})

    Authgear sends no bearer token with a webhook: mount the endpoint outside the ``protect`` prefixes of
    :class:`~flask_authgear.wsgi.AuthgearMiddleware` (or in front of it), or every delivery gets a 401.
    The rules of each answer are :class:`~flask_authgear.webhooks.dispatch.WebhookHandlers`'.
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        handlers: Mapping[str, Handler] | None = None,
        *,
        store: IdempotencyStore | None = None,
        idempotency: bool = True,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.secrets = webhook_secrets(secret)
        self.handlers = WebhookHandlers(handlers, store=store, idempotency=idempotency, max_age=max_age, clock=clock)
        self.max_body_bytes = max_body_bytes

    def on(self, *event_types: str) -> Callable[[H], H]:
        """Register the decorated function for these event types."""
        return self.handlers.on(*event_types)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise WebhookMethodNotAllowedError()
            body = read_body(environ, self.max_body_bytes)
            event = verify_webhook(
                body, environ.get(SIGNATURE_ENVIRON_KEY), self.secrets, max_bytes=self.max_body_bytes
            )
            answer = self.handlers.dispatch(event)
        except AuthgearError as error:
            return _respond(start_response, error.status_code, error.headers(), error.body())
        return _respond(
            start_response, 200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], answer.to_json()
        )


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}", [*headers, ("Content-Length", str(len(body)))])
    return [body]
