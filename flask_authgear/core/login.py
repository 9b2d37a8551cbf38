"""Where a browser goes when a protected page needs a sign-in: the ``AUTHGEAR_LOGIN_URL`` redirect.

Only a request that is refused for want of valid credentials (401) and that a browser made to show a page is
redirected: its ``Accept`` header prefers ``text/html`` to ``application/json``, it is not an
``XMLHttpRequest``, and a ``Sec-Fetch-Mode`` header, when sent, says ``navigate``. Scripts and API clients keep
getting the 401 and its ``WWW-Authenticate`` challenge; a 403 or a 503 is never a redirect, since signing in
again would not help.

Security notes, in plain words: the login page is a setting, never request data (no ``Host``, no header, no
parameter chooses where the redirect goes). The page comes back to is passed as ``next``, and ``next`` is always
a relative path: the request path with its leading slashes and backslashes folded into one ``/`` and every
character outside a URL path's own percent-encoded, so neither ``//evil.example`` nor ``/\\evil.example`` nor a
tab a browser would drop can turn it into another site's address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..errors import AuthgearError

__all__ = ["login_redirect"]

#: What a browser asks for when it shows a page, against what an API client asks for; on a tie (``*/*``) the
#: first wins, so a client that accepts anything gets the 401.
_OFFERS = ["application/json", "text/html"]
#: Characters kept as they are in ``next``: those of a path and a query (RFC 3986), without the backslash.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"


def _prefers_html(environ: WSGIEnvironment) -> bool:
    """Whether a browser made this request to show a page, rather than a script or an API client."""
    if environ.get("HTTP_X_REQUESTED_WITH", "").lower() == "xmlhttprequest":
        return False
    mode = environ.get("HTTP_SEC_FETCH_MODE")
    if mode is not None and mode != "navigate":
        return False
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return accept.best_match(_OFFERS) == "text/html"


def _next_path(environ: WSGIEnvironment) -> str:
    """The requested path and query as a relative URL that cannot leave the site."""
    # PATH_INFO and SCRIPT_NAME are the decoded path's bytes as Latin-1 text (PEP 3333).
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    path = b"/" + path.lstrip(b"/\\")
    out = quote(path, safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    if query:
        out += "?" + quote(query.encode("latin-1", "replace"), safe=_QUERY_SAFE)
    return out


def login_redirect(
    environ: WSGIEnvironment, error: AuthgearError, login_url: str | None
) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The answer (status, headers, body) that sends this refused request to the login page, or None to answer
    ``error`` as it is: no login URL is set, the refusal is not a 401, or the client is not a browser showing a
    page. 303 after an unsafe method, so the browser follows with a ``GET``; 302 otherwise. The same request
    from an API client gets the 401, hence ``Vary: Accept``."""
    if login_url is None or error.status_code != 401 or not _prefers_html(environ):
        return None
    separator = "&" if "?" in login_url else "?"
    headers = [
        ("Location", f"{login_url}{separator}{urlencode({'next': _next_path(environ)})}"),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept, Authorization, Cookie"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    status = 302 if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD") else 303
    return status, headers, b"Sign in to see this page.\n"
