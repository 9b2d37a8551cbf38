"""Authenticate Flask and WSGI requests against Authgear."""

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

__version__ = "0.1.0"

__all__ = [
    "AuthgearError",
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
]
