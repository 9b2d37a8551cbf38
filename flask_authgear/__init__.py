"""Authenticate Flask and WSGI requests against Authgear."""

import importlib
from typing import TYPE_CHECKING, Any

from .config import Settings
from .core.verifier import Verifier
from .errors import (
    AuthgearError,
    ConfigurationError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
    ReauthenticationRequiredError,
)
from .user import AuthgearUser
from .webhooks import WebhookAnswer, WebhookError, WebhookEvent, allow, deny, verify_webhook
from .webhooks.wsgi import WebhookEndpoint
from .wsgi import AuthgearMiddleware

if TYPE_CHECKING:
    from .flask import (
        Authgear,
        current_app_user,
        current_user,
        error_response,
        get_app_user,
        get_current_user,
        require_auth,
        verify_request,
    )
    from .webhooks.flask import Webhooks, get_webhook_event, require_webhook

__version__ = "0.1.0"

#: The Flask adapters' names, by module, imported on first use: the core and the WSGI middleware need no Flask.
_FLASK_NAMES = {
    **dict.fromkeys(
        (
            "Authgear",
            "current_app_user",
            "current_user",
            "error_response",
            "get_app_user",
            "get_current_user",
            "require_auth",
            "verify_request",
        ),
        "flask_authgear.flask",
    ),
    **dict.fromkeys(("Webhooks", "get_webhook_event", "require_webhook"), "flask_authgear.webhooks.flask"),
}


def __getattr__(name: str) -> Any:
    if name in _FLASK_NAMES:
        return getattr(importlib.import_module(_FLASK_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Authgear",
    "AuthgearError",
    "AuthgearMiddleware",
    "AuthgearUser",
    "ConfigurationError",
    "ForbiddenError",
    "InvalidRequestError",
    "InvalidTokenError",
    "MissingCredentialsError",
    "ProviderUnavailableError",
    "ReauthenticationRequiredError",
    "Settings",
    "Verifier",
    "WebhookAnswer",
    "WebhookEndpoint",
    "WebhookError",
    "WebhookEvent",
    "Webhooks",
    "__version__",
    "allow",
    "current_app_user",
    "current_user",
    "deny",
    "error_response",
    "get_app_user",
    "get_current_user",
    "get_webhook_event",
    "require_auth",
    "require_webhook",
    "verify_request",
    "verify_webhook",
]
