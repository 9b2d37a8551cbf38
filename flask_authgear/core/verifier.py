"""The one verifier: a request's headers in, an :class:`AuthgearUser` or an :class:`AuthgearError` out.

Modes:

* ``jwt``: the bearer token is a JWT access token, verified locally against the project's JWKS.
* ``resolver``: the bearer token or session cookie is checked by Authgear's resolver endpoint (cached).
* ``proxy``: a trusted reverse proxy already asked the resolver; its ``X-Authgear-*`` headers are read.
* ``auto``: a JWT-shaped bearer token is verified locally, an opaque token or a cookie goes to the resolver.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import (
    AuthgearError,
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
)
from ..user import AuthgearUser
from .credentials import bearer_token, is_b64token
from .csrf import check_cross_site
from .jose import looks_like_jwt
from .proxy import ProxyHeaderReader
from .refusals import TokenError
from .request import RequestData, direct_peer, strip_proxy_headers
from .requirements import DEFAULT_REQUIREMENTS, Requirements

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .resolver import ResolverClient

__all__ = ["Verifier"]

logger = logging.getLogger("flask_authgear")

#: Largest ``Cookie`` header forwarded to the resolver, in bytes.
_MAX_COOKIE_BYTES = 16384
_CONTROL_OR_WIDE = re.compile(r"[\x00-\x1f\x7f]|[^\x00-\xff]")
#: Environ key holding the verifier whose rules removed this request's forged headers, so a second call with the
#: same rules does not scan the environ again.
_ENVIRON_SCRUBBED_BY = "authgear.scrubbed_by"


def _unexpected() -> ProviderUnavailableError:
    """The one rule for a surprise while authenticating, called from an ``except Exception`` block: any exception
    that is not an :class:`AuthgearError` (a bug, a library's own error) is logged with its traceback and
    answered 503, never a 500 and never a user."""
    logger.exception("unexpected error while authenticating a request")
    return ProviderUnavailableError()


def _cookie(value: str | None) -> str | None:
    """The Cookie header to forward, None when absent, or 400 when it could not be forwarded safely."""
    # Surrounding whitespace is not part of a field value (RFC 9110 section 5.5), and requests refuses to send
    # a header value that begins with it.
    value = (value or "").strip(" \t")
    if not value:
        return None
    if len(value) > _MAX_COOKIE_BYTES:
        raise InvalidRequestError("The Cookie header is too large.")
    # Control characters could split the forwarded header; text beyond Latin-1 cannot be sent as it came.
    # Other bytes pass unchanged (a WSGI server hands header bytes over as Latin-1 text), as long as the
    # HTTP client agrees to send them: its own rule decides, so a value it refuses is this request's fault
    # (400), never an outage of the resolver.
    if _CONTROL_OR_WIDE.search(value) is not None:
        raise InvalidRequestError("The Cookie header is malformed.")
    # Imported here, not with the module: JWT mode never forwards a cookie and need not load the HTTP client.
    from requests.exceptions import InvalidHeader
    from requests.utils import check_header_validity

    try:
        check_header_validity(("Cookie", value))
    except InvalidHeader:
        raise InvalidRequestError("The Cookie header is malformed.") from None
    return value


class Verifier:
    """Shared by the Flask extension and the WSGI middleware; knows nothing of either.

    Thread-safe: one instance serves every request of an app.
    """

    def __init__(self, settings: Settings) -> None:
        # What a mode needs is imported when a verifier of that mode is built, so ``import flask_authgear`` stays
        # cheap: the JWT modules (joserfc's cryptography, requests) for every mode, since ``verify_token`` reads
        # JWTs in each; the resolver's (requests-cache and its backends) for resolver and auto modes only.
        from .jwks import JWKSCache
        from .jwt import JWTVerifier

        self.settings = settings
        self.jwks = JWKSCache(settings)
        self.jwt = JWTVerifier(settings, self.jwks)
        mode = settings.mode
        self.resolver: ResolverClient | None = None
        if mode in ("resolver", "auto"):
            from .resolver import ResolverClient

            self.resolver = ResolverClient(settings)
        self.proxy: ProxyHeaderReader | None = ProxyHeaderReader(settings) if mode == "proxy" else None
        self._max_header = settings.max_header_bytes

    def authenticate(self, request: RequestData) -> AuthgearUser:
        """Return the request's user, or raise: missing or bad credentials 401 (400 malformed), a cross-site
        cookie request 403, Authgear down or answering garbage 503."""
        try:
            return self._authenticate(request)
        except AuthgearError:
            raise
        except Exception:
            raise _unexpected() from None

    def _authenticate(self, request: RequestData) -> AuthgearUser:
        token = bearer_token(request.authorization, self._max_header)
        if token is not None and self._verifies_locally(token):
            if self.settings.mode == "auto":
                _cookie(request.cookie)  # auto mode reads cookies: an unusable one is refused even beside a JWT
            try:
                return self.jwt.verify(token)
            except TokenError:
                # The token's syntax is checked only once it is refused: JOSE's alphabet lies within b64token,
                # so a token that verified (or is cached) has it, and a repeated token skips a scan of its text.
                if not is_b64token(token):
                    raise InvalidRequestError() from None
                raise
        if token is not None and not is_b64token(token):
            raise InvalidRequestError()
        if self.settings.mode == "jwt":
            raise MissingCredentialsError()
        cookie = _cookie(request.cookie)
        if cookie is not None and (token is None or self.proxy is not None):
            # Before anything else: a forged request costs no resolver call. A proxy's resolver call falls back
            # to the cookies when the bearer token is invalid (as Authgear does), so there a cookie beside a
            # bearer token may still be what vouches for the request.
            check_cross_site(self.settings, request)
        if self.proxy is not None:
            return self.proxy.authenticate(request)
        if token is not None:
            # The bearer token alone: Authgear would fall back to the cookies when it is invalid, and a stale or
            # forged header would then ride on the browser's session, past the cookie rules above.
            return self._resolve(f"Bearer {token}", None)
        if cookie is None:
            raise MissingCredentialsError()
        return self._resolve(None, cookie)

    def _verifies_locally(self, token: str) -> bool:
        """JWT mode verifies every token locally; auto mode the JWT-shaped ones; the others resolve."""
        mode = self.settings.mode
        return mode == "jwt" or (mode == "auto" and looks_like_jwt(token))

    def authenticate_environ(
        self, environ: WSGIEnvironment, requirements: Requirements = DEFAULT_REQUIREMENTS
    ) -> AuthgearUser:
        """:meth:`authenticate` for a WSGI environ, then the route's :class:`Requirements`, which both adapters
        share: by default an Authgear anonymous user and a machine are refused with 403."""
        user = self.authenticate(RequestData.from_environ(environ, proxy_headers=self.proxy is not None))
        requirements.check(user)
        return user

    def verify_token(self, token: str) -> AuthgearUser:
        """Verify a bearer token as the configured mode does: locally for ``jwt`` (and JWT-shaped tokens in
        ``auto``), through the resolver for ``resolver`` and for opaque tokens in ``auto``."""
        try:
            return self._verify_token(token)
        except AuthgearError:
            raise
        except Exception:
            raise _unexpected() from None

    def _verify_token(self, token: str) -> AuthgearUser:
        if self.resolver is None or self._verifies_locally(token):
            return self.jwt.verify(token)
        # Held to the header's syntax and size, as authenticate() does, so the resolver's cache only ever holds
        # credentials a request could have carried. Refused as an invalid token, as JWT mode would.
        authorization = f"Bearer {token}"
        if len(authorization) > self._max_header or not is_b64token(token):
            raise InvalidTokenError()
        return self._resolve(authorization, None)

    def scrub_environ(self, environ: dict[str, Any]) -> bool:
        """Remove client-supplied ``X-Authgear-*`` headers from a WSGI environ, unless this is proxy mode and the
        peer is a trusted proxy (which overwrites them). Both adapters call it before the app sees the request.

        Once per request and verifier: returns False when this verifier already did it for this request (a Flask
        app reached both through its ``wsgi_app`` wrapper and its first ``before_request`` hook)."""
        if environ.get(_ENVIRON_SCRUBBED_BY) is self:
            return False
        if self.proxy is None or not self.proxy.is_trusted(direct_peer(environ)):
            strip_proxy_headers(environ)
        environ[_ENVIRON_SCRUBBED_BY] = self
        return True

    def _resolve(self, authorization: str | None, cookie: str | None) -> AuthgearUser:
        assert self.resolver is not None, "only resolver and auto modes resolve"
        user = self.resolver.resolve(authorization, cookie)
        if user is not None:
            return user
        if authorization is None:
            raise InvalidTokenError("The session is invalid or has expired.")
        raise InvalidTokenError()

    def health(self) -> dict[str, Any]:
        """Readiness information: JWKS freshness, cache counters (token cache, resolver cache), last errors."""
        mode = self.settings.mode
        out: dict[str, Any] = {"mode": mode, "ready": True, "last_error": None}
        if mode in ("jwt", "auto"):
            jwks = self.jwks.health()
            out["jwks"] = jwks
            out["ready"] = jwks["ready"]
            out["last_error"] = jwks["last_error"]
            out["token_cache"] = {"hits": self.jwt.cache_hits, "misses": self.jwt.cache_misses}
            out["rejections"] = dict(self.jwt.rejections)
        if self.resolver is not None:
            out["resolver"] = self.resolver.health()
            out["last_error"] = out["last_error"] or out["resolver"]["last_error"]
        if self.proxy is not None:
            out["trusted_proxies"] = ", ".join(str(network) for network in self.proxy.networks)
        return out

    def warm_up(self) -> dict[str, Any]:
        """Load the signing keys now if they are missing or old (JWT and auto modes), then return :meth:`health`.

        Call it at start-up or from a readiness probe: ``health()["ready"]`` alone stays False on a process that
        has not served a token yet. Never raises; a failure shows as ``ready: False`` and ``last_error``.
        """
        if self.settings.mode in ("jwt", "auto"):
            self.jwks.warm_up()
        return self.health()

    def close(self) -> None:
        """Release the resolver's connections and cache backend (tests and short-lived processes)."""
        if self.resolver is not None:
            self.resolver.close()
