"""The request's user: the app's state it is checked with (and the wrapper that cleans each request's headers),
the one call that authenticates it, the app's user loader, current_user."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from flask import Response, after_this_request, current_app, has_request_context, request
from werkzeug.datastructures import Headers
from werkzeug.local import LocalProxy

from ..core.calls import check_callable, not_awaitable
from ..core.request import ENVIRON_USER, is_preflight, varied, varying_start_response
from ..core.requirements import DEFAULT_REQUIREMENTS, Requirements, RouteOptions
from ..core.verifier import Verifier
from ..errors import AuthgearError, ConfigurationError, InvalidTokenError, MissingCredentialsError
from ..user import AuthgearUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .extension import Authgear

__all__ = ["UserLoader", "current_app_user", "current_user", "get_app_user", "get_current_user", "verify_request"]

#: ``app.extensions`` key of the app's own state, found there in one read per request.
STATE_KEY = "authgear.state"
#: A function that turns an authenticated :class:`AuthgearUser` into the app's own user, or None if unknown.
UserLoader = Callable[[AuthgearUser], Any]
L = TypeVar("L", bound=UserLoader)
_logger = logging.getLogger("flask_authgear")
#: Environ key holding the user loader's answer for the request's one identity.
_ENVIRON_APP_USER = "authgear.app_user"
#: The rules of a first read of :data:`current_user`: those of ``@require_auth(optional=True)``.
_FIRST_READ = Requirements(optional=True)


def _request_environ() -> WSGIEnvironment:
    """The current request's environ, read through werkzeug's documented ``_get_current_object``: reading
    ``request.environ`` through the proxy first fails a lookup on the proxy itself, which builds an
    AttributeError message on every read, several times per request."""
    environ: WSGIEnvironment = request._get_current_object().environ  # type: ignore[attr-defined]
    return environ


class _AppState:
    """One app's own: its verifier (which holds its settings), the extension whose loaders serve the app, and the
    wrapper around ``app.wsgi_app`` that the extension installs.

    As werkzeug's ``ProxyFix``, the wrapper makes one pass over the environ before Flask sees the request, the
    core's, as the WSGI middleware makes it: client-supplied ``X-Authgear-*`` headers are removed (kept in trusted
    proxy mode from a trusted peer, which overwrites them), and the answer of a request that was authenticated
    carries ``Vary: Authorization, Cookie``, so a shared HTTP cache never serves one user's answer to another.
    """

    __slots__ = ("extension", "verifier", "wsgi_app")
    verifier: Verifier
    extension: Authgear

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.verifier.scrub_environ(environ)
        return self.wsgi_app(environ, varying_start_response(environ, start_response))

    def scrub_bypassed(self) -> None:
        """The app's first ``before_request`` hook: the same core calls for a request that reached the app without
        passing this wrapper (a mounted app whose dispatcher holds the bare ``wsgi_app``); a no-op otherwise."""
        environ = _request_environ()
        if self.verifier.scrub_environ(environ):
            after_this_request(functools.partial(_varied_response, environ))


def _varied_response(environ: WSGIEnvironment, response: Response) -> Response:
    response.headers = Headers(varied(environ, response.headers.to_wsgi_list()))
    return response


def _state() -> _AppState:
    state = current_app._get_current_object().extensions.get(STATE_KEY)  # type: ignore[attr-defined]
    if not isinstance(state, _AppState):
        raise RuntimeError(
            "flask-authgear is not initialised for this app: call Authgear(app) or ext.init_app(app) first"
        )
    return state


def verify_request(
    *, requirements: Requirements = DEFAULT_REQUIREMENTS, **options: Unpack[RouteOptions]
) -> AuthgearUser | None:
    """Authenticate the current request and check the route's requirements; return the user.

    Returns None for a CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) and, with
    ``optional=True``, for a request without credentials. Runs the extension's :meth:`~Authgear.user_loader` once
    per request. Raises an :class:`AuthgearError` otherwise (the extension turns it into the 400/401/403/503
    response). The requirements are those of :func:`require_auth`.
    """
    return _authenticate(requirements.with_options(**options))


def _authenticate(requirements: Requirements) -> AuthgearUser | None:
    """The work of :func:`verify_request`, with the requirements a decorator built when its route was declared."""
    environ = _request_environ()
    if is_preflight(environ):
        return None
    state = _state()
    try:
        user = state.verifier.authenticate_environ(environ, requirements)
        _load_app_user(environ, user, state.extension)
    except AuthgearError as error:
        # A refused request keeps no user, not even one that an earlier, more lenient check (an optional route, a
        # first read of current_user) stored; "no user" is stored, so a later read does not authenticate again.
        environ[ENVIRON_USER] = None
        if requirements.optional and isinstance(error, MissingCredentialsError):
            return None
        raise
    environ[ENVIRON_USER] = user
    return user


def get_current_user() -> AuthgearUser | None:
    """The user authenticated for this request, or None.

    In a request that no check ran for yet (a view without :func:`require_auth`), the first call authenticates
    the request as ``@require_auth(optional=True)`` would, and the answer is kept for the rest of the request.
    There anything but a user reads as no user: missing, invalid or refused credentials, an Authgear outage, a
    user the loader does not know. Reading :data:`current_user` never raises, so a page that only shows who is
    signed in keeps working; routes that need a user say so with :func:`require_auth`.
    """
    if not has_request_context():
        return None
    environ = _request_environ()
    if ENVIRON_USER in environ:
        user: AuthgearUser | None = environ[ENVIRON_USER]
        return user
    if not isinstance(current_app.extensions.get(STATE_KEY), _AppState):
        return None  # this app verifies nothing: no user, and nothing stored for a check that never ran
    try:
        return _authenticate(_FIRST_READ)
    except AuthgearError:
        return None  # _authenticate stored "no user" for the request
    except Exception:
        # The app's user loader failed: the request has no user, and the app learns why from the log.
        _logger.exception("the user loader failed while current_user was read; the request has no user")
        environ[ENVIRON_USER] = None
        return None


class _NoUser:
    """What :data:`current_user` stands for when no user was authenticated: falsy, ``is_authenticated`` False and
    ``is_anonymous`` True, as flask-login's anonymous user, so a template written for flask-login that tests
    either one shows nobody's page (a missing attribute is falsy in Jinja: ``{% if not current_user.is_anonymous
    %}`` would otherwise let nobody in). Any other attribute read raises an ``AttributeError`` that says why,
    never a value that a check could mistake for a user's."""

    __slots__ = ()

    is_authenticated = False
    is_anonymous = True
    is_machine = False

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"no user is authenticated in this request, so current_user has no {name!r}: "
            "test current_user.is_authenticated (or its truth value) first"
        )

    def __repr__(self) -> str:
        return "<no authenticated user>"


_NO_USER = _NoUser()

#: The current request's :class:`AuthgearUser`, as flask-login's ``current_user``. In a view without
#: :func:`require_auth` the first read authenticates with ``optional=True`` semantics and never raises. Without a
#: user (no or invalid credentials outside a protected route, no credentials on an optional one) it is falsy and
#: ``current_user.is_authenticated`` is False; call :func:`get_current_user` to get the plain object or None.
current_user: AuthgearUser = cast(AuthgearUser, LocalProxy(lambda: get_current_user() or _NO_USER))


def _check_async_ready(func: Any, what: str) -> None:
    """The core's rule for a callable, plus Flask's own: an ``async def`` one needs ``flask[async]``
    (asgiref), which is better said now than by every request that would run it."""
    check_callable(func, what)
    if inspect.iscoroutinefunction(func) and importlib.util.find_spec("asgiref") is None:
        raise ConfigurationError(f"{what} is async: install Flask's async extra (pip install 'flask[async]')")


def _load_app_user(environ: WSGIEnvironment, user: AuthgearUser, extension: Authgear) -> None:
    """Run the extension's user loader for ``user`` (its machine loader for a machine), once per request; refuse
    an identity it does not know with 401."""
    loader = extension._machine_loader if user.is_machine else extension._user_loader
    if loader is None:
        return
    if _ENVIRON_APP_USER in environ:
        return  # a second check in the same request: the loader already answered for its one identity
    what = "the machine loader" if user.is_machine else "the user loader"
    app_user = not_awaitable(current_app.ensure_sync(loader)(user), what)
    if app_user is None:
        who = "client" if user.is_machine else "user"
        raise InvalidTokenError(f"The {who} is not known to this application.")
    environ[_ENVIRON_APP_USER] = app_user


def get_app_user() -> Any:
    """The user loader's answer for this request's authenticated user, or None (no user, or no loader)."""
    # The answer stays in the environ after a later check refused the request, which then has no user.
    return None if get_current_user() is None else _request_environ().get(_ENVIRON_APP_USER)


#: The user loader's answer for the current request (see :meth:`Authgear.user_loader`); falsy without one.
current_app_user: Any = LocalProxy(get_app_user)


def _template_context() -> dict[str, Any]:
    """Jinja templates see ``current_user`` and ``current_app_user``, as with flask-login."""
    return {"current_user": current_user, "current_app_user": current_app_user}
