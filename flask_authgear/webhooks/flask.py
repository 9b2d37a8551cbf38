"""The Flask adapter of webhooks: :func:`require_webhook` for one view, :class:`Webhooks` for a handler per event.

The secret is the app's ``webhook_secret`` setting: from the :class:`~flask_authgear.flask.Authgear` extension
when it is initialised for the app, otherwise from ``app.config["AUTHGEAR_WEBHOOK_SECRET"]``. No secret is a
:class:`~flask_authgear.errors.ConfigurationError`, never an open door.

Authgear sends no bearer token with a webhook, so a webhook view is not decorated with ``require_auth``. It
works beside ``Authgear(app)``: the extension keeps the ``X-Authgear-Body-Signature`` header. Under the WSGI
middleware, keep the webhook URL out of its ``protect`` prefixes.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from ..config import secret_list
from ..errors import AuthgearError
from ..flask import EXTENSION_KEY, Authgear, error_response
from . import (
    MAX_BODY_BYTES,
    SIGNATURE_ENVIRON_KEY,
    WebhookAnswer,
    WebhookEvent,
    WebhookMethodNotAllowedError,
    read_body,
    verify_webhook,
    webhook_secrets,
)
from .dispatch import H, Handler, IdempotencyStore, WebhookHandlers

__all__ = ["Webhooks", "get_webhook_event", "require_webhook", "verify_webhook_request"]

P = ParamSpec("P")
R = TypeVar("R")

ENVIRON_EVENT = "authgear.webhook_event"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def app_webhook_secrets(app: Flask) -> tuple[str, ...]:
    """The app's webhook secrets: the extension's setting when initialised, else ``AUTHGEAR_WEBHOOK_SECRET``."""
    ext = app.extensions.get(EXTENSION_KEY)
    if isinstance(ext, Authgear):
        return webhook_secrets(ext._state_for(app).settings.webhook_secret)
    # Read as the extension would read it: a comma-separated string is several secrets (a rotation).
    return webhook_secrets(secret_list(app.config.get("AUTHGEAR_WEBHOOK_SECRET") or (), "AUTHGEAR_WEBHOOK_SECRET"))


def verify_webhook_request(
    secret: str | Sequence[str] | None = None, *, max_bytes: int = MAX_BODY_BYTES
) -> WebhookEvent:
    """Verify the current request as an Authgear webhook and return its event (also at :func:`get_webhook_event`).

    Raises a :class:`~flask_authgear.webhooks.WebhookError` (405, 413, 401, 400) for a refused request.
    """
    environ = request.environ
    if environ.get("REQUEST_METHOD") != "POST":
        raise WebhookMethodNotAllowedError()
    secrets = webhook_secrets(secret) if secret is not None else app_webhook_secrets(current_app._get_current_object())  # type: ignore[attr-defined]
    body = read_body(environ, max_bytes)
    event = verify_webhook(body, environ.get(SIGNATURE_ENVIRON_KEY), secrets, max_bytes=max_bytes)
    environ[ENVIRON_EVENT] = event  # only once every check passed
    return event


def get_webhook_event() -> WebhookEvent | None:
    """The verified event of the current request, or None when none was verified."""
    event: WebhookEvent | None = request.environ.get(ENVIRON_EVENT)
    return event


def answer_response(answer: WebhookAnswer) -> Response:
    """A blocking hook's answer as the JSON response Authgear reads."""
    return Response(answer.to_json(), 200, {"Content-Type": "application/json", "Cache-Control": "no-store"})


def require_webhook(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Only let verified Authgear webhooks into ``view``: 400/401/405/413 JSON otherwise.

    The view reads the event with :func:`get_webhook_event` and may return ``allow(...)``/``deny(...)``
    (sent as JSON) or anything Flask accepts.
    """
    is_async = inspect.iscoroutinefunction(view)

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        try:
            verify_webhook_request()
        except AuthgearError as error:
            return error_response(error)
        result = cast(R, current_app.ensure_sync(view)(*args, **kwargs)) if is_async else view(*args, **kwargs)
        if isinstance(result, WebhookAnswer):
            return answer_response(result)
        return result

    return wrapper


class Webhooks:
    """One webhook URL with a handler per event type: ``hooks = Webhooks(app)``, ``@hooks.on("user.created")``.

    Accepts a Flask app or a blueprint. Every method reaches the view, so a wrong one gets a JSON 405. See
    :mod:`flask_authgear.webhooks.dispatch` for the answer to each delivery (unhandled events, idempotency by
    ``id``, ``max_age``). A handler that raises is logged and answered 503, so Authgear retries.
    """

    def __init__(
        self,
        app: Flask | Blueprint | None = None,
        rule: str = "/authgear/webhook",
        *,
        endpoint: str = "authgear_webhook",
        secret: str | Sequence[str] | None = None,
        store: IdempotencyStore | None = None,
        idempotency: bool = True,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.rule = rule
        self.endpoint = endpoint
        self.secret = webhook_secrets(secret) if secret is not None else None
        self.handlers = WebhookHandlers(store=store, idempotency=idempotency, max_age=max_age, clock=clock)
        self.max_body_bytes = max_body_bytes
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask | Blueprint) -> None:
        """Add the URL rule; the secret is checked now (for a blueprint: when it is registered)."""
        app.add_url_rule(self.rule, self.endpoint, self._view, methods=_ALL_METHODS, provide_automatic_options=False)
        if self.secret is not None:
            return
        if isinstance(app, Flask):
            app_webhook_secrets(app)
        else:
            app.record_once(self._check_registered)

    def _check_registered(self, state: BlueprintSetupState) -> None:
        app_webhook_secrets(cast(Flask, state.app))

    def on(self, *event_types: str) -> Callable[[H], H]:
        """Register the decorated function for these event types; async functions work too."""
        return self.handlers.on(*event_types)

    def _view(self) -> Response:
        try:
            event = verify_webhook_request(self.secret, max_bytes=self.max_body_bytes)
            answer = self.handlers.dispatch(event, _run)
        except AuthgearError as error:
            return error_response(error)
        return answer_response(answer)


def _run(handler: Handler, event: WebhookEvent) -> Any:
    return current_app.ensure_sync(handler)(event)
