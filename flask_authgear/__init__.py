"""Authenticate Flask and WSGI requests against Authgear."""

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
from .wsgi import AuthgearMiddleware

if TYPE_CHECKING:
    from .flask import Authgear, current_user, get_current_user, require_auth, verify_request

__version__ = "0.1.0"

#: The Flask adapter's names, imported on first use: the core and the WSGI middleware need no Flask.
_FLASK_NAMES = frozenset({"Authgear", "current_user", "get_current_user", "require_auth", "verify_request"})


def __getattr__(name: str) -> Any:
    if name in _FLASK_NAMES:
        from . import flask

        return getattr(flask, name)
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
    "__version__",
    "current_user",
    "get_current_user",
    "require_auth",
    "verify_request",
]
