"""The Flask adapter: the :class:`Authgear` extension, :func:`require_auth`, :data:`current_user`.

It only adapts: the request's WSGI environ goes to the core :class:`~flask_authgear.core.verifier.Verifier`, the
user it returns is checked against the route's requirements, and an :class:`~flask_authgear.errors.AuthgearError`
becomes a response with its RFC 6750 ``WWW-Authenticate`` header and JSON body.

Security notes, in plain words:

* The user is stored (in ``environ["authgear.user"]``, as the WSGI middleware does) only after every check of
  the route passed, so code that reads :data:`current_user` never sees a user that the route refused.
* Client-supplied ``X-Authgear-*`` identity headers are removed by a wrapper around ``app.wsgi_app`` before
  Flask sees the request, and again by the app's first ``before_request`` hook (an app mounted by a dispatcher
  may be called without the wrapper), so code that reads those headers cannot be fooled. In trusted proxy mode
  they are kept only on requests whose direct peer is in ``AUTHGEAR_TRUSTED_PROXIES`` (the proxy overwrites
  them). Each app verifies with its own settings, found through ``current_app``, however apps are nested.
* Authgear anonymous users (``is_anonymous``) are refused with 403 unless a route passes
  ``allow_anonymous=True``: an anonymous account proves a device, not a person.
* Invalid credentials are a 401 even on an optional route: a broken or forged token never becomes "no user".
* Answers of routes that authenticated their request carry ``Vary: Authorization, Cookie``, so a shared HTTP
  cache never serves one user's page to another; error answers carry ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from flask import Flask, Request, Response, current_app, has_app_context, request
from werkzeug.local import LocalProxy

from .config import Settings
from .core.request import ENVIRON_USER, is_preflight, varying_start_response
from .core.verifier import Verifier
from .errors import (
    AuthgearError,
    ConfigurationError,
    ForbiddenError,
    MissingCredentialsError,
    ReauthenticationRequiredError,
)
from .user import AuthgearUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask.typing import ResponseReturnValue

__all__ = [
    "Authgear",
    "ErrorHandler",
    "current_user",
    "get_current_user",
    "require_auth",
    "verify_request",
]

logger = logging.getLogger("flask_authgear")

P = ParamSpec("P")
R = TypeVar("R")

#: A function that turns an :class:`AuthgearError` into the app's own response.
ErrorHandler = Callable[[AuthgearError], "ResponseReturnValue"]

EXTENSION_KEY = "authgear"


@dataclass(frozen=True, slots=True)
class _AppState:
    """What one app needs per request: its settings and its verifier."""

    settings: Settings
    verifier: Verifier


class Authgear:
    """The Flask extension: ``Authgear(app)``, or ``ext = Authgear()`` and later ``ext.init_app(app)``.

    Settings come from the app's ``AUTHGEAR_*`` config keys; keyword arguments (lowercase, e.g.
    ``endpoint=...``, ``mode="resolver"``) given here or to :meth:`init_app` win over the config. One extension
    object may serve several apps (the application-factory pattern): each app gets its own settings and its own
    :class:`~flask_authgear.core.verifier.Verifier`, so caches are never shared between apps.
    """

    def __init__(self, app: Flask | None = None, **settings: Any) -> None:
        self._defaults = settings
        self._states: weakref.WeakKeyDictionary[Flask, _AppState] = weakref.WeakKeyDictionary()
        self._last: weakref.ref[Flask] | None = None
        self._error_handler: ErrorHandler | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **settings: Any) -> None:
        """Validate the settings (a bad value raises :class:`ConfigurationError` now) and install the hooks."""
        merged = {**self._defaults, **settings}
        resolved = Settings.from_mapping(app.config, **merged)
        state = _AppState(settings=resolved, verifier=Verifier(resolved))
        self._states[app] = state
        self._last = weakref.ref(app)
        app.extensions[EXTENSION_KEY] = self
        # Around the whole Flask app, so no before_request function, view or error handler can read a forged
        # identity header (and cheaper than a before_request hook).
        if isinstance(app.wsgi_app, HeaderScrubber):
            app.wsgi_app.state = state
        else:
            app.wsgi_app = HeaderScrubber(app.wsgi_app, state)  # type: ignore[method-assign]
        hooks = app.before_request_funcs.setdefault(None, [])
        if _scrub_headers not in hooks:
            hooks.insert(0, _scrub_headers)
        # An app's own handler for AuthgearError, registered before init_app, is kept.
        if AuthgearError not in app.error_handler_spec[None][None]:
            app.register_error_handler(AuthgearError, self._handle_error)

    # -- per-app state -----------------------------------------------------------------------------------

    def _state_for(self, app: Flask) -> _AppState:
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError(
                "this Authgear extension was not initialised for this app; call Authgear(app) or ext.init_app(app)"
            ) from None

    def _current_state(self) -> _AppState:
        if has_app_context():
            return self._state_for(current_app._get_current_object())  # type: ignore[attr-defined]
        app = self._last() if self._last is not None else None
        if app is None:
            raise RuntimeError("the Authgear extension is not initialised: call Authgear(app) or ext.init_app(app)")
        return self._state_for(app)

    @property
    def verifier(self) -> Verifier:
        """The core verifier of the current app (or of the app this extension was last initialised for)."""
        return self._current_state().verifier

    @property
    def settings(self) -> Settings:
        """The validated settings of the current app (or of the app this extension was last initialised for)."""
        return self._current_state().settings

    def health(self, *, warm_up: bool = False) -> dict[str, Any]:
        """Readiness of the current app's verifier: ``ready``, ``last_error``, JWKS freshness, cache counters.

        With ``warm_up=True`` the signing keys are fetched first when missing or old, so a readiness probe
        on a process that has not served a token yet can turn ready. See ``Verifier.health``.
        """
        verifier = self._current_state().verifier
        return verifier.warm_up() if warm_up else verifier.health()

    # -- errors ------------------------------------------------------------------------------------------

    def error_handler(self, func: ErrorHandler) -> ErrorHandler:
        """Register ``func(error) -> response`` to answer every :class:`AuthgearError` (usable as a decorator).

        Flask's own ``@app.errorhandler(AuthgearError)`` (or a subclass such as ``ForbiddenError``) works too.
        """
        self._error_handler = func
        return func

    def _handle_error(self, error: AuthgearError) -> ResponseReturnValue:
        if self._error_handler is not None:
            return self._error_handler(error)
        return error_response(error, self._current_state().settings.realm)


def error_response(error: AuthgearError, realm: str = "authgear") -> Response:
    """The default answer to an error: its status, RFC 6750 challenge, ``Cache-Control: no-store``, JSON body."""
    return Response(error.body(), status=error.status_code, headers=error.headers(realm))


class HeaderScrubber:
    """Wraps ``app.wsgi_app``: removes client-supplied ``X-Authgear-*`` headers before Flask sees the request, and
    marks the answer of a request that was authenticated with ``Vary: Authorization, Cookie``.

    In trusted proxy mode the headers stay on requests whose direct peer is a trusted proxy, which overwrites them.
    The ``Vary`` header keeps a shared HTTP cache from serving one user's answer to another.
    """

    __slots__ = ("state", "wsgi_app")

    def __init__(self, wsgi_app: WSGIApplication, state: _AppState) -> None:
        self.wsgi_app = wsgi_app
        self.state = state

    @property
    def verifier(self) -> Verifier:
        return self.state.verifier

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.state.verifier.scrub_environ(environ)
        return self.wsgi_app(environ, varying_start_response(environ, start_response))


def _scrub_headers() -> None:
    """The app's first ``before_request`` hook: the header removal of :class:`HeaderScrubber`, with this app's
    own trust decision, for a request that reached the app without passing its wrapper."""
    _state().verifier.scrub_environ(request.environ)


#: The current request object itself, past werkzeug's proxy.
_current_request: Callable[[], Request] = cast(Any, request)._get_current_object


def _state() -> _AppState:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ext = app.extensions.get(EXTENSION_KEY)
    if not isinstance(ext, Authgear):
        raise RuntimeError(
            "flask-authgear is not initialised for this app: call Authgear(app) or ext.init_app(app) first"
        )
    return ext._state_for(app)


# -- requirements --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a route asks of its user, checked after authentication. Built once, when the route is decorated."""

    optional: bool = False
    roles: frozenset[str] | None = None
    all_roles: frozenset[str] | None = None
    verified: bool = False
    allow_anonymous: bool = False
    max_auth_age: float | None = None

    @classmethod
    def build(
        cls,
        *,
        optional: bool = False,
        roles: str | Iterable[str] | None = None,
        all_roles: str | Iterable[str] | None = None,
        verified: bool = False,
        allow_anonymous: bool = False,
        max_auth_age: float | None = None,
    ) -> Requirements:
        """Validate the options; a mistake raises :class:`ConfigurationError` when the route is declared."""
        if max_auth_age is not None and (
            isinstance(max_auth_age, bool)
            or not isinstance(max_auth_age, int | float)
            or not math.isfinite(max_auth_age)
            or max_auth_age < 0
        ):
            raise ConfigurationError("max_auth_age must be a number of seconds >= 0")
        return cls(
            optional=bool(optional),
            roles=_role_set(roles, "roles"),
            all_roles=_role_set(all_roles, "all_roles"),
            verified=bool(verified),
            allow_anonymous=bool(allow_anonymous),
            max_auth_age=None if max_auth_age is None else float(max_auth_age),
        )

    def check(self, user: AuthgearUser) -> None:
        """Raise 403 for a user lacking what the route needs, 401 (RFC 9470) for a too old authentication."""
        if self.verified and not user.is_verified:
            raise ForbiddenError("A verified account is required.")
        if self.roles is not None and user.roles.isdisjoint(self.roles):
            raise ForbiddenError("The user does not have a required role.")
        if self.all_roles is not None and not user.roles.issuperset(self.all_roles):
            raise ForbiddenError("The user does not have a required role.")
        if self.max_auth_age is not None:
            at = user.authenticated_at
            # Unknown authentication time: fail closed, the client can still re-authenticate.
            if at is None or time.time() - at.timestamp() > self.max_auth_age:
                raise ReauthenticationRequiredError(max_age=str(int(self.max_auth_age)))


def _role_set(value: str | Iterable[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)  # roles="admin" means the role admin, not the letters a, d, m, i, n
    out = frozenset(value)
    if not out or not all(isinstance(r, str) and r for r in out):
        raise ConfigurationError(f"{what} must be a non-empty list of non-empty role names")
    return out


_DEFAULT = Requirements()


def authenticate(requirements: Requirements = _DEFAULT) -> AuthgearUser | None:
    """The work behind :func:`verify_request`, with pre-built requirements (used by the decorator)."""
    environ = request.environ
    if is_preflight(environ):
        return None
    verifier = _state().verifier
    try:
        user = verifier.authenticate_environ(environ, allow_anonymous=requirements.allow_anonymous)
        requirements.check(user)
    except MissingCredentialsError:
        if requirements.optional:
            environ[ENVIRON_USER] = None
            return None
        environ.pop(ENVIRON_USER, None)
        raise
    except AuthgearError:
        environ.pop(ENVIRON_USER, None)  # a refused request never keeps a user, not even one stored earlier
        raise
    environ[ENVIRON_USER] = user
    return user


def verify_request(
    *,
    optional: bool = False,
    roles: str | Iterable[str] | None = None,
    all_roles: str | Iterable[str] | None = None,
    verified: bool = False,
    allow_anonymous: bool = False,
    max_auth_age: float | None = None,
) -> AuthgearUser | None:
    """Authenticate the current request and check the route's requirements; return the user.

    Returns None for a CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) and, with
    ``optional=True``, for a request without credentials.
    Raises an :class:`AuthgearError` otherwise (the extension turns it into the 400/401/403/503 response).
    ``roles`` is any-of, ``all_roles`` all-of. See :func:`require_auth` for the options.
    """
    return authenticate(
        Requirements.build(
            optional=optional,
            roles=roles,
            all_roles=all_roles,
            verified=verified,
            allow_anonymous=allow_anonymous,
            max_auth_age=max_auth_age,
        )
    )


@overload
def require_auth(view: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def require_auth(
    *,
    optional: bool = False,
    roles: str | Iterable[str] | None = None,
    all_roles: str | Iterable[str] | None = None,
    verified: bool = False,
    allow_anonymous: bool = False,
    max_auth_age: float | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def require_auth(
    view: Callable[P, R] | None = None,
    /,
    *,
    optional: bool = False,
    roles: str | Iterable[str] | None = None,
    all_roles: str | Iterable[str] | None = None,
    verified: bool = False,
    allow_anonymous: bool = False,
    max_auth_age: float | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view: ``@require_auth`` or ``@require_auth(roles=["admin"], max_auth_age=300)``.

    Args:
        optional: let requests without any credentials through with no user (``current_user`` is falsy);
            invalid credentials are still refused with 401.
        roles: the user needs at least one of these roles (any-of), else 403.
        all_roles: the user needs every one of these roles (all-of), else 403.
        verified: the user's account must be verified (``is_verified``), else 403.
        allow_anonymous: accept Authgear anonymous users; they are refused with 403 by default.
        max_auth_age: the user must have authenticated at most this many seconds ago, else 401 with
            ``error="insufficient_user_authentication"`` and ``max_age`` (RFC 9470), so the client can ask the
            user to sign in again before a sensitive action.

    A CORS preflight passes without authentication; any other ``OPTIONS`` request is checked. Async views work
    through ``app.ensure_sync``.
    """
    requirements = Requirements.build(
        optional=optional,
        roles=roles,
        all_roles=all_roles,
        verified=verified,
        allow_anonymous=allow_anonymous,
        max_auth_age=max_auth_age,
    )

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        # Flask already runs this wrapper through app.ensure_sync; only an async view needs converting inside
        # it, and that is known now, not on every request.
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            authenticate(requirements)
            if is_async:
                return cast(R, current_app.ensure_sync(func)(*args, **kwargs))
            return func(*args, **kwargs)

        return wrapper

    if view is not None:
        return decorator(view)
    return decorator


# -- the current user ----------------------------------------------------------------------------------------


def get_current_user() -> AuthgearUser | None:
    """The user authenticated for this request, or None (no credentials on an optional route, or no check ran)."""
    try:
        environ = _current_request().environ
    except RuntimeError:  # outside a request
        return None
    user: AuthgearUser | None = environ.get(ENVIRON_USER)
    return user


class _CurrentUserProxy(LocalProxy):  # type: ignore[type-arg]
    """:data:`current_user`: a werkzeug proxy whose attribute reads (``current_user.id``, the common use) take the
    user straight from the request's environ instead of through the generic proxy machinery, a measurable share
    of a small request. Everything else (``bool``, ``==``, ``repr`` ...) is werkzeug's."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            environ = _current_request().environ
        except RuntimeError:  # outside a request: as werkzeug's proxy does for None
            return getattr(None, name)
        return getattr(environ.get(ENVIRON_USER), name)


#: The current request's :class:`AuthgearUser`. A proxy is never ``None``: test ``if current_user:``, or call
#: :func:`get_current_user` to get the plain object or None.
current_user: AuthgearUser = cast(AuthgearUser, _CurrentUserProxy(get_current_user))
