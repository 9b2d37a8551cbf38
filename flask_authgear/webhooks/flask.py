"""The Flask adapter of webhooks: :func:`require_webhook` for one view, :class:`Webhooks` for a handler per event.

The secret is the app's ``webhook_secret`` setting: from the :class:`~flask_authgear.flask.Authgear` extension
when it is initialised for the app, otherwise from ``app.config["AUTHGEAR_WEBHOOK_SECRET"]``. No secret is a
:class:`~flask_authgear.errors.ConfigurationError`, never an open door. Both take the options of
:class:`~flask_authgear.webhooks.dispatch.WebhookHandlers` (idempotency by ``id``, ``max_age``,
``sync_hook_timeout``) and follow its rules.

Authgear sends no bearer token with a webhook, so a webhook view is not decorated with ``require_auth``. It
works beside ``Authgear(app)``: the extension keeps the ``X-Authgear-Body-Signature`` header. Under the WSGI
middleware, keep the webhook URL out of its ``protect`` prefixes.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from ..config import ENVIRONMENT_LABEL
from ..errors import AuthgearError, ConfigurationError
from ..flask.current import _check_async_ready
from ..flask.decorator_order import guarding
from ..flask.extension import EXTENSION_KEY, app_settings, error_response
from .answers import ACKNOWLEDGED, WebhookAnswer
from .dispatch import HandlerOptions, WebhookHandlers
from .event import WebhookEvent
from .signature import verify_environ, webhook_secrets

__all__ = ["Webhooks", "app_webhook_secrets", "get_webhook_event", "require_webhook", "verify_webhook_request"]

P = ParamSpec("P")
R = TypeVar("R")

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Environ key holding the verified event of the request.
_ENVIRON_EVENT = "authgear.webhook_event"


def app_webhook_secrets(app: Flask) -> tuple[str, ...]:
    """The app's webhook secrets: the extension's setting when initialised, else ``AUTHGEAR_WEBHOOK_SECRET`` from
    the app's config or the environment."""
    if EXTENSION_KEY in app.extensions:
        return webhook_secrets(app_settings(app).webhook_secret)
    # Read as the extension would read it: app.config, then the environment.
    key = "AUTHGEAR_WEBHOOK_SECRET"
    if app.config.get(key):
        return webhook_secrets(app.config[key], key)
    return webhook_secrets(os.environ.get(key), ENVIRONMENT_LABEL.format(key=key))


def verify_webhook_request(secret: str | Sequence[str] | None = None) -> WebhookEvent:
    """Verify the current request as an Authgear webhook and return its event (also at :func:`get_webhook_event`).

    ``secret`` defaults to the app's setting. Raises a :class:`~flask_authgear.webhooks.WebhookError` (405, 413,
    401, 400) for a refused request.
    """
    if secret is None:
        secret = app_webhook_secrets(current_app._get_current_object())  # type: ignore[attr-defined]
    # A hook that ran before the view (a request logger calling request.get_data()) has emptied the WSGI stream;
    # Flask keeps the bytes it read, and werkzeug has no public way to ask whether it has them.
    cached = request.__dict__.get("_cached_data")
    event = verify_environ(request.environ, secret, cached if isinstance(cached, bytes) else None)
    request.environ[_ENVIRON_EVENT] = event  # only once every check passed
    return event


def get_webhook_event() -> WebhookEvent | None:
    """The verified event of the current request, or None when none was verified."""
    event: WebhookEvent | None = request.environ.get(_ENVIRON_EVENT)
    return event


def _answer_response(answer: WebhookAnswer) -> Response:
    """A webhook answer as the JSON response Authgear reads."""
    return Response(answer.to_json(), 200, answer.headers())


@overload
def require_webhook(view: Callable[P, R], /) -> Callable[P, Response]: ...


@overload
def require_webhook(**options: Unpack[HandlerOptions]) -> Callable[[Callable[P, R]], Callable[P, Response]]: ...


def require_webhook(
    view: Callable[P, R] | None = None, /, **options: Unpack[HandlerOptions]
) -> Callable[P, Response] | Callable[[Callable[P, R]], Callable[P, Response]]:
    """Only let verified Authgear webhooks into a view: ``@require_webhook`` or ``@require_webhook(max_age=60)``.

    Refused requests get a 400/401/413 JSON answer (405 too when the view's route takes other methods than POST;
    otherwise Flask answers them itself, before the view). The view reads the event with :func:`get_webhook_event`
    and may return ``event.allow(...)``/``event.deny(...)`` (sent as JSON) or anything Flask accepts. The options
    and rules are the dispatcher's: a repeated non-blocking event is acknowledged without calling the view, and a
    view that raises or answers with an error status for a non-blocking event is logged at ERROR and counted:
    Authgear does not send that event again.
    """
    rules = WebhookHandlers(**options)

    def decorator(func: Callable[P, R]) -> Callable[P, Response]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            def call() -> Response:
                result = current_app.ensure_sync(func)(*args, **kwargs)
                if isinstance(result, WebhookAnswer):
                    return _answer_response(rules.answer(event, result) if event.is_blocking else result)
                return current_app.make_response(cast(Any, result))

            try:
                event = verify_webhook_request()
                response = rules.run(event, call, lambda r: r.status_code < 300)
            except AuthgearError as error:
                return error_response(error)
            return _answer_response(ACKNOWLEDGED) if response is None else response

        return guarding(func, wrapper)

    return decorator(view) if view is not None else decorator


class Webhooks(WebhookHandlers):
    """One webhook URL with a handler per event type: ``hooks = Webhooks(app)``, ``@hooks.on("user.created")``.

    Accepts a Flask app or a blueprint. Every method reaches the view, so a wrong one gets a JSON 405. See
    :class:`~flask_authgear.webhooks.dispatch.WebhookHandlers` for the options and the answer to each delivery
    (unhandled events, idempotency by ``id``, ``max_age``). A handler that raises is logged with the event's type
    and id and answered 503; Authgear does not send the event again. Handlers may be async.

    The view's endpoint is named after the URL (``/authgear/webhook`` is ``authgear_webhook``,
    ``/hooks/billing`` is ``hooks_billing``), so one app can have several webhook URLs; ``endpoint=`` names it
    otherwise, and a name already taken is a :class:`~flask_authgear.errors.ConfigurationError`.
    """

    def __init__(
        self,
        app: Flask | Blueprint | None = None,
        rule: str = "/authgear/webhook",
        *,
        endpoint: str | None = None,
        secret: str | Sequence[str] | None = None,
        **options: Unpack[HandlerOptions],
    ) -> None:
        super().__init__(**options)
        self.rule = rule
        # Named after the URL, so two webhook URLs of one app do not overwrite each other's view.
        self.endpoint = endpoint or re.sub(r"\W+", "_", rule).strip("_") or "authgear_webhook"
        #: Secrets of this URL alone; None reads the app's setting (``AUTHGEAR_WEBHOOK_SECRET``).
        self.secret = webhook_secrets(secret) if secret is not None else None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask | Blueprint) -> None:
        """Add the URL rule; the secret is checked now (for a blueprint: when it is registered)."""
        if isinstance(app, Flask) and self.endpoint in app.view_functions:
            raise ConfigurationError(
                f"the endpoint {self.endpoint!r} of the webhook URL {self.rule} is already taken:"
                " pass endpoint= with another name"
            )
        app.add_url_rule(self.rule, self.endpoint, self._view, methods=_ALL_METHODS, provide_automatic_options=False)
        if self.secret is not None:
            return
        if isinstance(app, Flask):
            app_webhook_secrets(app)
        else:
            app.record_once(self._check_registered)

    def _check_registered(self, state: BlueprintSetupState) -> None:
        app_webhook_secrets(cast(Flask, state.app))

    def check_handler(self, handler: Any) -> None:
        _check_async_ready(handler, "the webhook handler")

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return current_app.ensure_sync(func)

    def _view(self) -> Response:
        try:
            answer = self.dispatch(verify_webhook_request(self.secret))
        except AuthgearError as error:
            return error_response(error)
        return _answer_response(answer)
