"""Errors that know their HTTP answer: status, RFC 6750 ``WWW-Authenticate`` header and JSON body.

Descriptions are fixed strings chosen here, never built from request data, so an error can never echo a
token, a ``kid`` or any other attacker input into a header or a body.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "AuthgearError",
    "ConfigurationError",
    "ForbiddenError",
    "InvalidRequestError",
    "InvalidTokenError",
    "MissingCredentialsError",
    "ProviderUnavailableError",
    "ReauthenticationRequiredError",
]

# RFC 6750 section 3: error_description and other auth-param values may only use these characters.
_HEADER_SAFE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _safe(value: str, fallback: str) -> str:
    return value if _HEADER_SAFE.fullmatch(value) else fallback


_RESERVED = frozenset({"realm", "error", "error_description", "error_uri"})


class ConfigurationError(ValueError):
    """Raised at start-up for settings that cannot work; the message says which one and why."""


class AuthgearError(Exception):
    """Base of every per-request failure. Adapters turn it into a response with :meth:`headers` and :meth:`body`."""

    status_code: int = 401
    #: The RFC 6750 error code, or None when the request carried no credentials at all.
    error: str | None = "invalid_token"
    description: str = "The access token is invalid."

    def __init__(self, description: str | None = None, **auth_params: str) -> None:
        # Descriptions and parameters are written by this library, but they end up in a header: anything
        # that is not header-safe is replaced rather than sent, so no caller can ever inject into it.
        if description is not None:
            self.description = _safe(description, type(self).description)
        #: Extra RFC 6750 / RFC 9470 parameters for the challenge, e.g. ``max_age``.
        self.auth_params: dict[str, str] = {
            name: str(value)
            for name, value in auth_params.items()
            if _PARAM_NAME.fullmatch(name) and name not in _RESERVED and _HEADER_SAFE.fullmatch(str(value))
        }
        super().__init__(self.description)

    def www_authenticate(self, realm: str = "authgear") -> str:
        """The ``WWW-Authenticate`` challenge for this error (RFC 6750 section 3)."""
        parts = [f'Bearer realm="{_safe(realm, "authgear")}"']
        if self.error is not None:
            parts.append(f'error="{self.error}"')
            parts.append(f'error_description="{self.description}"')
        parts.extend(f'{k}="{v}"' for k, v in self.auth_params.items())
        return ", ".join(parts)

    def challenge(self, realm: str = "authgear") -> str | None:
        """The ``WWW-Authenticate`` value of the error response, or None for a response without one."""
        return self.www_authenticate(realm)

    def headers(self, realm: str = "authgear") -> list[tuple[str, str]]:
        """Every header of the error response; errors are never cached by browsers or proxies."""
        out = [("Content-Type", "application/json")]
        challenge = self.challenge(realm)
        if challenge is not None:
            out.append(("WWW-Authenticate", challenge))
        out.append(("Cache-Control", "no-store"))
        if self.status_code == 503:
            out.append(("Retry-After", "5"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: ``error`` (``unauthorized`` when no credentials were sent) and ``error_description``."""
        body: dict[str, Any] = {"error": self.error or "unauthorized", "error_description": self.description}
        body.update(self.auth_params)
        return body

    def body(self) -> bytes:
        """:meth:`to_dict` as UTF-8 JSON bytes."""
        return json.dumps(self.to_dict()).encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status_code}, error={self.error!r})"


class MissingCredentialsError(AuthgearError):
    """No credentials were sent. RFC 6750 3.1: the challenge then carries no ``error`` attribute."""

    error = None
    description = "Authentication is required."


class InvalidRequestError(AuthgearError):
    """The ``Authorization`` header is malformed (not ``Bearer <token>``, too large, bad characters)."""

    status_code = 400
    error = "invalid_request"
    description = "The Authorization header is malformed."


class InvalidTokenError(AuthgearError):
    """The credentials were read but do not prove an identity: bad signature, expired, wrong audience ...

    Its status, code and description are :class:`AuthgearError`'s defaults."""


class ReauthenticationRequiredError(AuthgearError):
    """The user authenticated too long ago for this route (RFC 9470 step-up challenge with ``max_age``)."""

    error = "insufficient_user_authentication"
    description = "A more recent authentication is required."


class ForbiddenError(AuthgearError):
    """Authenticated, but lacking what the route requires (a role, a verified account ...)."""

    status_code = 403
    error = "insufficient_scope"
    description = "The user is not allowed to access this resource."


class ProviderUnavailableError(AuthgearError):
    """Authgear (discovery, JWKS or resolver) could not be reached or answered garbage: fail closed with 503."""

    status_code = 503
    error = "temporarily_unavailable"
    description = "The identity provider is temporarily unavailable."

    def www_authenticate(self, realm: str = "authgear") -> str:
        # RFC 6750 has no code for this; the challenge stays a plain Bearer one.
        return f'Bearer realm="{_safe(realm, "authgear")}"'
