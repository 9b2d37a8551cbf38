"""The Flask adapter: the :class:`Authgear` extension, :func:`require_auth`, :data:`current_user`.

It only adapts: the request's WSGI environ goes to the core :class:`~flask_authgear.core.verifier.Verifier`, the
user it returns is checked against the route's requirements, and an :class:`~flask_authgear.errors.AuthgearError`
becomes a response with its RFC 6750 ``WWW-Authenticate`` header and JSON body.

Security notes, in plain words:

* The user is stored (in ``environ["authgear.user"]``, as the WSGI middleware does) only after every check of
  the route passed, so code that reads :data:`current_user` never sees a user that the route refused.
* In a view without :func:`require_auth`, the first read of :data:`current_user` authenticates the request with
  ``optional=True`` semantics and the same rules (anonymous users, cross-site cookies, the user loader); what
  would be an error there reads as no user, never as an exception. The answer lives in the request's environ,
  so it is never another request's.
* Client-supplied ``X-Authgear-*`` identity headers are removed by a wrapper around ``app.wsgi_app`` before
  Flask sees the request, or by the app's first ``before_request`` hook when the request did not pass this app's
  wrapper (an app mounted by a dispatcher may be called without it), so code that reads those headers cannot be
  fooled. In trusted proxy mode they are kept only on requests whose direct peer is in
  ``AUTHGEAR_TRUSTED_PROXIES`` (the proxy overwrites them). Each app verifies with its own settings, found
  through ``current_app``, however apps are nested.
* Authgear anonymous users (``is_anonymous``) are refused with 403 unless a route passes
  ``allow_anonymous=True``: an anonymous account proves a device, not a person. Machines (client-credentials
  tokens) are refused with 403 unless a route passes ``allow_machine=True``: no person stands behind them.
* Invalid credentials are a 401 even on an optional route: a broken or forged token never becomes "no user".
* A user the app's user loader does not know is a 401 too: proving an Authgear identity is not enough to be a
  user of this app. A machine is never handed to the user loader: only to a machine loader, when the app has one.
* ``@require_auth`` written above ``@app.route`` would leave the registered view unprotected: the extension
  finds that (at ``init_app`` and before the first request) and raises :class:`ConfigurationError` instead.
* Answers of routes that authenticated their request carry ``Vary: Authorization, Cookie``, so a shared HTTP
  cache never serves one user's page to another; error answers carry ``Cache-Control: no-store``.
"""

from .current import UserLoader, current_app_user, current_user, get_app_user, get_current_user, verify_request
from .decorators import require_auth
from .extension import Authgear, error_response

__all__ = [
    "Authgear",
    "UserLoader",
    "current_app_user",
    "current_user",
    "error_response",
    "get_app_user",
    "get_current_user",
    "require_auth",
    "verify_request",
]
