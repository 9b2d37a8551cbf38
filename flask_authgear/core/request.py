"""What the core reads of a request, and the request rules both adapters share.

The Flask extension and the WSGI middleware only translate: which environ key holds the user, who the direct
peer is, which headers are removed, which ``OPTIONS`` request passes unauthenticated and which answers vary on
the credentials are decided here, once.

Security notes. The peer whose ``X-Authgear-*`` headers may be believed is the *direct* peer, the address
that opened the connection. Werkzeug's ``ProxyFix`` replaces ``REMOTE_ADDR`` with the client's address taken
from ``X-Forwarded-For`` and keeps the original in ``environ["werkzeug.proxy_fix.orig"]``; a client cannot set
that key (clients only reach ``HTTP_*`` keys), so the original is read from there when present. Removing the
identity headers leaves ``X-Authgear-Body-Signature`` alone: Authgear signs the webhooks it sends with it, and
it proves nothing about who is calling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "ENVIRON_USER",
    "SIGNATURE_HEADER",
    "RequestData",
    "direct_peer",
    "is_preflight",
    "strip_proxy_headers",
    "varied",
    "vary_on_credentials",
    "varying_start_response",
]

#: Environ key holding the authenticated :class:`~flask_authgear.user.AuthgearUser`, or None.
ENVIRON_USER = "authgear.user"

#: Prefix of the headers Authgear's resolver answers with, as WSGI environ keys.
_PROXY_ENVIRON_PREFIX = "HTTP_X_AUTHGEAR_"
#: Authgear's webhook signature: begins like the identity headers but is not one, so it is never removed. The
#: webhook readers take its name from here, so the header they verify is the one this rule keeps.
SIGNATURE_HEADER = "X-Authgear-Body-Signature"
_SIGNATURE_KEY = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")
#: Where werkzeug's ProxyFix keeps the environ values it replaced.
_PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"

_VARY = ("Authorization", "Cookie")
_EMPTY: Mapping[str, str] = MappingProxyType({})


def direct_peer(environ: WSGIEnvironment) -> str | None:
    """The address of the direct peer: ``REMOTE_ADDR`` as the server set it, before any ProxyFix rewrote it."""
    original = environ.get(_PROXY_FIX_ORIGINAL)
    if isinstance(original, dict) and "REMOTE_ADDR" in original:
        peer: str | None = original["REMOTE_ADDR"]
        return peer
    return environ.get("REMOTE_ADDR")


def is_preflight(environ: WSGIEnvironment) -> bool:
    """A CORS preflight, the only request that passes a protected route unauthenticated: browsers send it
    without credentials by design. Any other ``OPTIONS`` request is authenticated like a ``GET``."""
    return environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ


class RequestData(NamedTuple):
    """The request as the verifier sees it. Adapters build it; the core never touches a framework object."""

    method: str = "GET"
    authorization: str | None = None
    cookie: str | None = None
    #: The direct peer (see :func:`direct_peer`), whose proxy headers proxy mode may believe.
    remote_addr: str | None = None
    origin: str | None = None
    sec_fetch_site: str | None = None
    #: The request's own ``Host``, so a cookie-authenticated request can be told same-origin.
    host: str | None = None
    #: ``X-Authgear-*`` headers as received, keyed by lowercase name (``x-authgear-user-id``); proxy mode only.
    proxy_headers: Mapping[str, str] = _EMPTY

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment, *, proxy_headers: bool = False) -> RequestData:
        collected: Mapping[str, str] = _EMPTY
        if proxy_headers:
            collected = {
                "x-authgear-" + key[len(_PROXY_ENVIRON_PREFIX) :].lower().replace("_", "-"): value
                for key, value in environ.items()
                if key.startswith(_PROXY_ENVIRON_PREFIX)
            }
        # In field order, without keywords: built on every request, and keyword arguments would build a
        # dictionary and match it against the field names each time.
        return cls(
            environ.get("REQUEST_METHOD", "GET"),  # method
            environ.get("HTTP_AUTHORIZATION"),  # authorization
            environ.get("HTTP_COOKIE"),  # cookie
            direct_peer(environ),  # remote_addr
            environ.get("HTTP_ORIGIN"),  # origin
            environ.get("HTTP_SEC_FETCH_SITE"),  # sec_fetch_site
            environ.get("HTTP_HOST") or environ.get("SERVER_NAME"),  # host
            collected,  # proxy_headers
        )


def strip_proxy_headers(environ: dict[str, Any]) -> None:
    """Remove client-supplied ``X-Authgear-*`` identity headers so no later code can read them as identity.

    Environ keys are native strings (PEP 3333); the webhook signature is the one ``X-Authgear-*`` header kept."""
    # The substring test first: it runs on every key of every request's environ, and on Python 3.11
    # str.startswith parses its arguments the slow way while "in" rules out most keys in C.
    forged = [
        key
        for key in environ
        if _PROXY_ENVIRON_PREFIX in key and key.startswith(_PROXY_ENVIRON_PREFIX) and key != _SIGNATURE_KEY
    ]
    for key in forged:
        del environ[key]


def vary_on_credentials(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """WSGI response headers that also vary on ``Authorization`` and ``Cookie``, merged into any ``Vary``."""
    for header in headers:
        if header[0].lower() == "vary":
            break
    else:
        return [*headers, ("Vary", "Authorization, Cookie")]
    name, value = header
    present = {token.strip().lower() for token in value.split(",")}
    missing = [token for token in _VARY if token.lower() not in present]
    if not missing or "*" in present:
        return headers
    merged = list(headers)
    merged[headers.index(header)] = (name, ", ".join([value, *missing]) if value.strip() else ", ".join(missing))
    return merged


def varied(environ: WSGIEnvironment, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The answer's headers, with ``Vary: Authorization, Cookie`` when the request was authenticated.

    A request counts as authenticated once an adapter stored its outcome under :data:`ENVIRON_USER`: its
    answer may depend on the credentials, so a shared HTTP cache must never serve it to another user.
    """
    return vary_on_credentials(headers) if ENVIRON_USER in environ else headers


def varying_start_response(environ: WSGIEnvironment, start_response: StartResponse) -> StartResponse:
    """``start_response`` that sends the headers :func:`varied` gives."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
        return start_response(status, varied(environ, headers), exc_info)

    return start
