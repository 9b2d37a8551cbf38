"""The Flask adapter of webhooks: :class:`Webhooks`, one URL of the app with a handler per event type.

The secret is the app's ``webhook_secret`` setting: from the :class:`~flask_authgear.flask.Authgear` extension
when it is initialised for the app, otherwise ``AUTHGEAR_WEBHOOK_SECRET`` read as the extension reads it (a key of
``app.config`` wins over the environment). No secret is a :class:`~flask_authgear.errors.ConfigurationError`,
never an open door. It takes the options of
:class:`~flask_authgear.webhooks.dispatch.WebhookHandlers` (idempotency by ``id``, ``max_age``,
``sync_hook_timeout``) and follows its rules.

Authgear sends no bearer token with a webhook, so the webhook URL is not protected with ``require_auth``. It
works beside ``Authgear(app)``: the extension keeps the ``X-Authgear-Body-Signature`` header. Under the WSGI
middleware, keep the webhook URL out of its ``protect`` prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Unpack, cast

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from ..config import given_setting
from ..errors import AuthgearError, ConfigurationError
from ..flask.current import _check_async_ready
from ..flask.extension import EXTENSION_KEY, app_settings, error_response
from .dispatch import HandlerOptions, WebhookHandlers
from .signature import verify_environ, webhook_secrets

__all__ = ["Webhooks", "app_webhook_secrets"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def app_webhook_secrets(app: Flask) -> tuple[str, ...]:
    """The app's webhook secrets: the extension's setting when initialised, else ``AUTHGEAR_WEBHOOK_SECRET`` from
    the app's config or the environment."""
    if EXTENSION_KEY in app.extensions:
        return webhook_secrets(app_settings(app).webhook_secret)
    return webhook_secrets(*given_setting("webhook_secret", app.config))


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
        secret = self.secret or app_webhook_secrets(current_app)
        # A hook that ran before the view (a request logger calling request.get_data()) has emptied the WSGI stream;
        # Flask keeps the bytes it read, and werkzeug has no public way to ask whether it has them.
        cached = request.__dict__.get("_cached_data")
        try:
            answer = self.dispatch(
                verify_environ(request.environ, secret, cached if isinstance(cached, bytes) else None)
            )
        except AuthgearError as error:
            return error_response(error)
        return Response(answer.to_json(), 200, answer.headers())
