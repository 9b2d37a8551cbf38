"""Authenticate Flask and WSGI requests against Authgear."""

from .config import Settings
from .core.requirements import Requirements
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
from .user import AuthgearUser
from .webhooks import WebhookAnswer, WebhookError, WebhookEvent, verify_webhook
from .webhooks.flask import Webhooks
from .webhooks.wsgi import WebhookEndpoint
from .wsgi import AuthgearMiddleware

__version__ = "0.1.0"

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
    "Requirements",
    "Settings",
    "Verifier",
    "WebhookAnswer",
    "WebhookEndpoint",
    "WebhookError",
    "WebhookEvent",
    "Webhooks",
    "__version__",
    "current_app_user",
    "current_user",
    "error_response",
    "get_app_user",
    "get_current_user",
    "require_auth",
    "verify_request",
    "verify_webhook",
]
