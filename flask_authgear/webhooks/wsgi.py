"""A WSGI app that receives Authgear webhooks for any framework: mount it at the URL configured in Authgear."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Unpack

from ..errors import AuthgearError
from ..wsgi import respond
from .dispatch import HandlerOptions, WebhookHandlers
from .signature import verify_environ, webhook_secrets

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WebhookEndpoint"]


class WebhookEndpoint(WebhookHandlers):
    """Verify each POSTed delivery, call the handler of its event type, answer as Authgear expects.

    .. code-block:: python

        hooks = WebhookEndpoint(os.environ["AUTHGEAR_WEBHOOK_SECRET"])

        @hooks.on("user.created")
        def created(event): ...

        app = DispatcherMiddleware(app, {"/authgear/webhook": hooks})

    Authgear sends no bearer token with a webhook: mount the endpoint outside the ``protect`` prefixes of
    :class:`~flask_authgear.wsgi.AuthgearMiddleware` (or in front of it), or every delivery gets a 401.
    The options and the rules of each answer are :class:`~flask_authgear.webhooks.dispatch.WebhookHandlers`'.
    A handler may be ``async def``: plain WSGI has no event loop, so each call runs it to completion in a new
    one (as ``asyncio.run`` does) before the delivery is answered.
    """

    def __init__(self, secret: str | Sequence[str], **options: Unpack[HandlerOptions]) -> None:
        super().__init__(**options)
        self.secrets = webhook_secrets(secret)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            answer = self.dispatch(verify_environ(environ, self.secrets))
        except AuthgearError as error:
            status, headers, body = error.status_code, error.headers(), error.body()
        else:
            status, headers, body = 200, answer.headers(), answer.to_json()
        return respond(start_response, status, headers, body)
