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
from collections import Counter
from typing import TYPE_CHECKING, Any

import requests

from ..config import Settings
from ..errors import AuthgearError, InvalidRequestError, InvalidTokenError, MissingCredentialsError
from ..user import AuthgearUser
from .credentials import bearer_token
from .csrf import CSRFGuard
from .jose import TokenError, looks_like_jwt
from .jwks import JWKSCache
from .jwt import JWTVerifier
from .proxy import ProxyHeaderReader, networks_description
from .request import RequestData, strip_proxy_headers
from .resolver import ResolverClient

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

logger = logging.getLogger("flask_authgear")

#: Largest ``Cookie`` header forwarded to the resolver, in bytes.
MAX_COOKIE_BYTES = 16384
_UNSENDABLE = re.compile(r"[\x00-\x1f\x7f]|[^\x00-\xff]")


def _cookie(value: str | None) -> str | None:
    """The Cookie header to forward, None when absent, or 400 when it could not be forwarded safely."""
    if not value:
        return None
    # Surrounding whitespace is not part of a field value (RFC 9110 section 5.5), and requests refuses to send
    # a header value that begins with it.
    value = value.strip(" \t")
    if not value:
        return None
    if len(value) > MAX_COOKIE_BYTES:
        raise InvalidRequestError("The Cookie header is too large.")
    # Control characters could split the forwarded header; text beyond Latin-1 cannot be sent as it came.
    # Other bytes pass unchanged (a WSGI server hands header bytes over as Latin-1 text).
    if _UNSENDABLE.search(value) is not None:
        raise InvalidRequestError("The Cookie header is malformed.")
    return value


class Verifier:
    """Shared by the Flask extension and the WSGI middleware; knows nothing of either.

    Thread-safe: one instance serves every request of an app.
    """

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.jwks = JWKSCache(settings, session)
        self.jwt = JWTVerifier(settings, self.jwks)
        mode = settings.mode
        self.resolver: ResolverClient | None = ResolverClient(settings) if mode in ("resolver", "auto") else None
        self.proxy: ProxyHeaderReader | None = ProxyHeaderReader(settings) if mode == "proxy" else None
        self.csrf = CSRFGuard(settings)
        self._max_header = settings.max_header_bytes
        # What authenticate_environ may answer from a cache, by mode (proxy mode: nothing). A subclass that
        # adds its own rules to authenticate() or verify_token() gets no shortcut, so its rules see every request.
        self._shortcut = {"jwt": self._cached_jwt, "resolver": self._cached_resolver, "auto": self._cached_auto}.get(
            mode
        )
        if type(self).authenticate is not Verifier.authenticate or type(self).verify_token is not Verifier.verify_token:
            self._shortcut = None
        #: JWT access tokens refused, by reason (``expired``, ``signature``, ``aud`` ...), for monitoring.
        self.rejections: Counter[str] = Counter()

    def authenticate(self, request: RequestData) -> AuthgearUser:
        """Return the request's user, or raise: missing or bad credentials 401 (400 malformed), a cross-site
        cookie request 403, Authgear down or answering garbage 503."""
        mode = self.settings.mode
        token = bearer_token(request.authorization, self._max_header)
        if mode == "jwt":
            if token is None:
                raise MissingCredentialsError()
            return self.verify_token(token)
        cookie = _cookie(request.cookie)
        if token is None and cookie is not None:
            self.csrf.check(request)  # before anything else: a forged request costs no resolver call
        if self.proxy is not None:
            return self.proxy.authenticate(request)
        if token is None and cookie is None:
            raise MissingCredentialsError()
        if mode == "auto" and token is not None and looks_like_jwt(token):
            return self._verify_jwt(token)
        return self._resolve(None if token is None else f"Bearer {token}", cookie)

    def authenticate_environ(self, environ: WSGIEnvironment) -> AuthgearUser:
        """:meth:`authenticate` for a WSGI environ: the adapters' entry point, with a shortcut for repeats.

        A request whose ``Authorization: Bearer <token>`` (and, in resolver mode, ``Cookie``) was already
        proven and is still fresh in a cache is answered from that cache: the entry exists only because the
        same text passed every check of :meth:`authenticate` before, and a hit is held to the same rules as
        the full path (expiry, signing key still published). Anything else, including every negative or
        unusual request, takes the full path, so both give the same answer. A subclass that overrides
        :meth:`authenticate` or :meth:`verify_token` to add rules has no shortcut: its rules see every request.
        """
        authorization = environ.get("HTTP_AUTHORIZATION")
        shortcut = self._shortcut
        if (
            shortcut is not None
            and authorization is not None
            and authorization[:7] == "Bearer "
            and len(authorization) <= self._max_header
        ):
            user = shortcut(authorization, environ)
            if user is not None:
                return user
        return self.authenticate(RequestData.from_environ(environ, proxy_headers=self.proxy is not None))

    # The shortcuts: a proven, fresh identity for exactly these credentials, or None (the full path decides).

    def _cached_jwt(self, authorization: str, environ: WSGIEnvironment) -> AuthgearUser | None:
        return self.jwt.cached(authorization[7:])  # the cookie plays no part in JWT mode

    def _cached_resolver(self, authorization: str, environ: WSGIEnvironment) -> AuthgearUser | None:
        # The resolver's cache is keyed by what the full path forwarded: "Bearer <token>" and the cookie.
        assert self.resolver is not None
        return self.resolver.cached_user(authorization, environ.get("HTTP_COOKIE") or None)

    def _cached_auto(self, authorization: str, environ: WSGIEnvironment) -> AuthgearUser | None:
        token = authorization[7:]
        if not looks_like_jwt(token):
            return self._cached_resolver(authorization, environ)
        # The full path refuses an unusable cookie even beside a valid bearer JWT: only requests without a
        # cookie take this shortcut.
        return None if environ.get("HTTP_COOKIE") else self.jwt.cached(token)

    def verify_token(self, token: str) -> AuthgearUser:
        """Verify a bearer token as the configured mode does: locally for ``jwt`` (and JWT-shaped tokens in
        ``auto``), through the resolver for ``resolver`` and for opaque tokens in ``auto``."""
        if self.resolver is not None and not (self.settings.mode == "auto" and looks_like_jwt(token)):
            authorization = f"Bearer {token}"
            # Held to the header's syntax, as authenticate() does, so the resolver's cache only ever holds
            # credentials a request could have carried. Refused as an invalid token, as JWT mode would.
            try:
                usable = bearer_token(authorization, self._max_header) == token
            except InvalidRequestError:
                usable = False
            if not usable:
                raise InvalidTokenError()
            return self._resolve(authorization, None)
        return self._verify_jwt(token)

    def scrub_environ(self, environ: dict[str, Any]) -> None:
        """Remove client-supplied ``X-Authgear-*`` headers from a WSGI environ, unless this is proxy mode and the
        peer is a trusted proxy (which overwrites them). Both adapters call it before the app sees the request."""
        if self.proxy is None or not self.proxy.is_trusted(environ.get("REMOTE_ADDR")):
            strip_proxy_headers(environ)

    def trusts_proxy(self, remote_addr: str | None) -> bool:
        """Whether ``remote_addr`` is a trusted proxy whose ``X-Authgear-*`` headers are read (proxy mode)."""
        return self.proxy is not None and self.proxy.is_trusted(remote_addr)

    def _verify_jwt(self, token: str) -> AuthgearUser:
        try:
            return self.jwt.verify(token)
        except TokenError as exc:
            # Counted and logged by reason only: never the token, and never its kid (attacker input).
            self.rejections[exc.reason] += 1
            logger.debug("JWT access token refused: %s", exc.reason)
            raise
        except AuthgearError:
            raise
        except Exception:
            # A bug or a library surprise must still fail closed, as a 401, never a 500.
            logger.exception("unexpected error while verifying a token")
            raise InvalidTokenError() from None

    def _resolve(self, authorization: str | None, cookie: str | None) -> AuthgearUser:
        if self.resolver is None:  # not reachable: only resolver and auto modes get here
            raise InvalidTokenError()
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
            out["rejections"] = dict(self.rejections)
        if self.resolver is not None:
            out["resolver"] = self.resolver.health()
            out["last_error"] = out["last_error"] or out["resolver"]["last_error"]
        if self.proxy is not None:
            out["trusted_proxies"] = networks_description(self.proxy.networks)
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
