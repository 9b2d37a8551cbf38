"""What the core reads of a request: a few headers and the peer address, nothing framework-specific."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Prefix of the headers Authgear's resolver answers with, as WSGI environ keys.
PROXY_ENVIRON_PREFIX = "HTTP_X_AUTHGEAR_"
#: ``X-Authgear-Body-Signature`` signs a webhook's body: it proves nothing about an identity, and the app needs it.
WEBHOOK_SIGNATURE_ENVIRON_KEY = "HTTP_X_AUTHGEAR_BODY_SIGNATURE"

_EMPTY: Mapping[str, str] = MappingProxyType({})


class RequestData(NamedTuple):
    """The request as the verifier sees it. Adapters build it; the core never touches a framework object.

    Immutable, and a named tuple rather than a dataclass because one is built for every request.
    """

    method: str = "GET"
    authorization: str | None = None
    cookie: str | None = None
    remote_addr: str | None = None
    origin: str | None = None
    sec_fetch_site: str | None = None
    #: The request's own ``Host`` and URL scheme, so a cookie-authenticated request can be told same-origin.
    host: str | None = None
    scheme: str = "http"
    #: ``X-Authgear-*`` headers as received, keyed by lowercase name (``x-authgear-user-id``); proxy mode only.
    proxy_headers: Mapping[str, str] = _EMPTY

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment, *, proxy_headers: bool = False) -> RequestData:
        get = environ.get
        collected: Mapping[str, str] = _EMPTY
        if proxy_headers:
            collected = {
                "x-authgear-" + key[len(PROXY_ENVIRON_PREFIX) :].lower().replace("_", "-"): value
                for key, value in environ.items()
                if key.startswith(PROXY_ENVIRON_PREFIX)
            }
        return cls(  # positional, in field order: the cheapest way to build a named tuple
            get("REQUEST_METHOD", "GET"),
            get("HTTP_AUTHORIZATION"),
            get("HTTP_COOKIE"),
            get("REMOTE_ADDR"),
            get("HTTP_ORIGIN"),
            get("HTTP_SEC_FETCH_SITE"),
            get("HTTP_HOST") or get("SERVER_NAME"),
            get("wsgi.url_scheme", "http"),
            collected,
        )


def strip_proxy_headers(environ: dict[str, Any]) -> None:
    """Remove client-supplied ``X-Authgear-*`` headers so no later code can read them as identity.

    The webhook signature header is kept: it is not an identity header, and a webhook cannot be verified
    without it.
    """
    try:
        # Nearly every request has none: one substring search over the joined keys (C speed) says so, instead
        # of a Python-level test per key. It only filters; the exact test below decides.
        if PROXY_ENVIRON_PREFIX not in "\n".join(environ):
            return
    except TypeError:  # a non-string key in a hand-made environ: fall through to the exact test
        pass
    forged = [
        key
        for key in environ
        if isinstance(key, str) and key.startswith(PROXY_ENVIRON_PREFIX) and key != WEBHOOK_SIGNATURE_ENVIRON_KEY
    ]
    for key in forged:
        del environ[key]
