"""What the core reads of a request: a few headers and the peer address, nothing framework-specific."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Prefix of the headers Authgear's resolver answers with, as WSGI environ keys.
PROXY_ENVIRON_PREFIX = "HTTP_X_AUTHGEAR_"

_EMPTY: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class RequestData:
    """The request as the verifier sees it. Adapters build it; the core never touches a framework object."""

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
    proxy_headers: Mapping[str, str] = field(default_factory=dict)

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
        return cls(
            method=get("REQUEST_METHOD", "GET"),
            authorization=get("HTTP_AUTHORIZATION"),
            cookie=get("HTTP_COOKIE"),
            remote_addr=get("REMOTE_ADDR"),
            origin=get("HTTP_ORIGIN"),
            sec_fetch_site=get("HTTP_SEC_FETCH_SITE"),
            host=get("HTTP_HOST") or get("SERVER_NAME"),
            scheme=get("wsgi.url_scheme", "http"),
            proxy_headers=collected,
        )


def strip_proxy_headers(environ: dict[str, Any]) -> None:
    """Remove client-supplied ``X-Authgear-*`` headers so no later code can read them as identity."""
    forged = [key for key in environ if key.startswith(PROXY_ENVIRON_PREFIX)]
    for key in forged:
        del environ[key]
