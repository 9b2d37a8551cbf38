"""The one verifier: a request's headers in, an :class:`AuthgearUser` or an :class:`AuthgearError` out."""

from __future__ import annotations

import logging
from typing import Any

import requests

from ..config import Settings
from ..errors import AuthgearError, InvalidTokenError, MissingCredentialsError
from ..user import AuthgearUser
from .credentials import bearer_token
from .jwks import JWKSCache
from .jwt import JWTVerifier
from .request import RequestData

logger = logging.getLogger("flask_authgear")


class Verifier:
    """Shared by the Flask extension and the WSGI middleware; knows nothing of either.

    Thread-safe: one instance serves every request of an app.
    """

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.jwks = JWKSCache(settings, session)
        self.jwt = JWTVerifier(settings, self.jwks)

    def authenticate(self, request: RequestData) -> AuthgearUser:
        """Return the request's user, or raise: missing or bad credentials 401 (400 malformed), Authgear down 503."""
        token = bearer_token(request.authorization, self.settings.max_header_bytes)
        if token is None:
            raise MissingCredentialsError()
        return self.verify_token(token)

    def verify_token(self, token: str) -> AuthgearUser:
        """Verify a JWT access token locally."""
        try:
            return self.jwt.verify(token)
        except AuthgearError:
            raise
        except Exception:
            # A bug or a library surprise must still fail closed, as a 401, never a 500.
            logger.exception("unexpected error while verifying a token")
            raise InvalidTokenError() from None

    def health(self) -> dict[str, Any]:
        """Readiness information: JWKS freshness, cache counters, last error."""
        return {
            "mode": self.settings.mode,
            "jwks": self.jwks.health(),
            "token_cache": {"hits": self.jwt.cache_hits, "misses": self.jwt.cache_misses},
        }
