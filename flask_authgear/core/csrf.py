"""Cross-site request forgery protection for cookie sessions (resolver, auto and proxy modes).

Why: a browser attaches cookies to every request for the site, including a form POST or a ``fetch`` that
some other site makes. A bearer token is only sent by code that holds it, so bearer requests cannot be
forged this way; a cookie session can. So a state-changing request (every method except GET, HEAD, OPTIONS
and TRACE) that is authenticated by a cookie, and not by an ``Authorization`` header, must come from our
own origin or from one listed in ``trusted_origins``; otherwise it gets a 403 with a fixed description
before the resolver is even asked.

How a cross-site request is recognised (the same rules as Go's ``net/http.CrossOriginProtection``):

1. an ``Origin`` listed in ``trusted_origins`` is allowed;
2. when the browser sends ``Sec-Fetch-Site`` (it cannot be set by page scripts), only ``same-origin`` and
   ``none`` (the user typed the URL or used a bookmark) are allowed; ``same-site`` and ``cross-site`` are not;
3. without ``Sec-Fetch-Site`` (older browsers), an ``Origin`` whose host differs from the request's ``Host``
   is refused, and so is ``Origin: null``;
4. with neither header the request did not come from a browser page that could be forged: allowed.

Set ``csrf_protection=False`` only when another layer (a CSRF token, ``SameSite=Strict`` cookies that you
control) already protects every state-changing route.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Settings
from ..errors import ForbiddenError
from .request import RequestData

__all__ = ["check_cross_site"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_REFUSAL = "Cross-site requests authenticated by a session cookie are not allowed."


def _names_host(origin: str, host: str | None) -> bool:
    """Whether a usable Origin names the request's own ``Host``: lowercase, the scheme's default port aside."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.netloc or parts.path or parts.query or parts.fragment or not host:
        return False
    return parts.netloc.lower().removesuffix(default) == host.strip().lower().removesuffix(default)


def check_cross_site(settings: Settings, request: RequestData) -> None:
    """Apply the rules above: raise a 403 :class:`ForbiddenError` for a forged-looking cookie request. Call it
    only for a request that a cookie authenticates."""
    if not settings.csrf_protection or request.method.upper() in _SAFE_METHODS:
        return
    origin = request.origin
    if origin is not None and origin.strip().rstrip("/").lower() in settings.trusted_origins:
        return
    fetch_site = request.sec_fetch_site
    if fetch_site is not None:
        if fetch_site.strip().lower() in _ALLOWED_FETCH_SITES:
            return
        raise ForbiddenError(_REFUSAL)
    if origin is not None and not _names_host(origin.strip(), request.host):
        raise ForbiddenError(_REFUSAL)
