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

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, cast, overload

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    after_this_request,
    current_app,
    has_app_context,
    redirect,
    request,
    request_started,
)
from werkzeug.datastructures import Headers
from werkzeug.local import LocalProxy

from .config import Settings
from .core.calls import check_callable, not_awaitable
from .core.login import login_redirect
from .core.request import ENVIRON_USER, is_preflight, varied, varying_start_response
from .core.requirements import DEFAULT_REQUIREMENTS, Requirements, RouteOptions
from .core.verifier import Verifier
from .errors import (
    AuthgearError,
    ConfigurationError,
    InvalidTokenError,
    MissingCredentialsError,
)
from .user import AuthgearUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask.typing import ResponseReturnValue

__all__ = [
    "Authgear",
    "ErrorHandler",
    "UserLoader",
    "current_app_user",
    "current_user",
    "error_response",
    "get_app_user",
    "get_current_user",
    "require_auth",
    "verify_request",
]

P = ParamSpec("P")
R = TypeVar("R")

#: A function that turns an :class:`AuthgearError` into the app's own response.
ErrorHandler = Callable[[AuthgearError], "ResponseReturnValue"]
#: A function that turns an authenticated :class:`AuthgearUser` into the app's own user, or None if unknown.
UserLoader = Callable[[AuthgearUser], Any]
L = TypeVar("L", bound=UserLoader)

logger = logging.getLogger("flask_authgear")

#: ``app.extensions`` key of the :class:`Authgear` extension, as Flask's convention wants.
EXTENSION_KEY = "authgear"
#: ``app.extensions`` key of the app's own state, found there in one read per request.
STATE_KEY = "authgear.state"
#: Environ key holding ``(AuthgearUser, app user)`` from the user loader.
_ENVIRON_APP_USER = "authgear.app_user"


@dataclass(frozen=True, slots=True)
class _AppState:
    """What one app needs per request: its settings and its verifier."""

    settings: Settings
    verifier: Verifier
    #: The extension that made this state: its user loader serves the app.
    extension: Authgear


class Authgear:
    """The Flask extension: ``Authgear(app)``, or ``ext = Authgear()`` and later ``ext.init_app(app)``.

    Settings come from keyword arguments (lowercase, e.g. ``endpoint=...``, ``mode="resolver"``) given here or to
    :meth:`init_app`, then the app's ``AUTHGEAR_*`` config keys, then ``AUTHGEAR_*`` environment variables: the
    first that names a setting wins (:meth:`Settings.load <flask_authgear.config.Settings.load>`). One extension
    object may serve several apps (the application-factory pattern): each app gets its own settings and its own
    :class:`~flask_authgear.core.verifier.Verifier`, so caches are never shared between apps.
    """

    def __init__(self, app: Flask | None = None, **settings: Any) -> None:
        self._defaults = settings
        self._last: weakref.ref[Flask] | None = None
        self._error_handler: ErrorHandler | None = None
        self._user_loader: UserLoader | None = None
        self._machine_loader: UserLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **settings: Any) -> None:
        """Validate the settings (a bad value raises :class:`ConfigurationError` now) and install the hooks."""
        merged = {**self._defaults, **settings}
        resolved = Settings.load(app.config, **merged)
        state = _AppState(settings=resolved, verifier=Verifier(resolved), extension=self)
        self._last = weakref.ref(app)
        app.extensions[EXTENSION_KEY] = self
        app.extensions[STATE_KEY] = state
        # Around the whole Flask app, so no before_request function, view or error handler can read a forged
        # identity header; the first before_request hook does the same for a request that bypassed the wrapper
        # (a mounted app whose dispatcher holds the bare wsgi_app), and is a no-op for one that passed it.
        scrubber = app.wsgi_app
        if isinstance(scrubber, HeaderScrubber):
            scrubber.verifier = state.verifier
        else:
            scrubber = app.wsgi_app = HeaderScrubber(app.wsgi_app, state.verifier)  # type: ignore[method-assign]
        hooks = app.before_request_funcs.setdefault(None, [])
        if scrubber.scrub_bypassed not in hooks:
            hooks.insert(0, scrubber.scrub_bypassed)
        # An app's own handler for AuthgearError, registered before init_app, is kept.
        if AuthgearError not in app.error_handler_spec[None][None]:
            app.register_error_handler(AuthgearError, self._handle_error)
        _install_app_hooks(app)

    # -- per-app state -----------------------------------------------------------------------------------

    def _state_for(self, app: Flask) -> _AppState:
        state = app.extensions.get(STATE_KEY)
        if not isinstance(state, _AppState) or state.extension is not self:
            raise RuntimeError(
                "this Authgear extension was not initialised for this app; call Authgear(app) or ext.init_app(app)"
            )
        return state

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

    # -- the app's own users, blueprints -----------------------------------------------------------------

    def user_loader(self, func: L) -> L:
        """Register ``func(user) -> app_user | None`` (usable as a decorator), as flask-login's ``user_loader``.

        It is called once per authenticated request, after every check of the route passed and before the view
        runs; its result is :data:`current_app_user` and :func:`get_app_user`. None refuses the request with 401
        (``invalid_token``, "The user is not known to this application."). An exception it raises is the app's
        own: it reaches Flask's error handling as it is. Every app this extension serves uses this loader.
        An ``async def`` loader is awaited through ``app.ensure_sync``, as Flask runs async views.
        """
        _check_async_ready(func, "the user loader")
        self._user_loader = func
        return func

    def machine_loader(self, func: L) -> L:
        """Register ``func(machine) -> app_client | None`` (usable as a decorator): the app's own record of a machine
        (``is_machine``; its ``client_id`` names it), as :meth:`user_loader` is for users.

        Machines never reach the user loader. Without a machine loader, a route that allows machines runs with no
        app user for them (:data:`current_app_user` is falsy); with one, its answer is :data:`current_app_user`,
        and None refuses the request with 401 ("The client is not known to this application."). An ``async def``
        loader is awaited through ``app.ensure_sync``, as the user loader is.
        """
        _check_async_ready(func, "the machine loader")
        self._machine_loader = func
        return func

    def protect(
        self,
        blueprint: Blueprint,
        *,
        requirements: Requirements = DEFAULT_REQUIREMENTS,
        **options: Unpack[RouteOptions],
    ) -> Blueprint:
        """Protect every view of ``blueprint`` with :func:`require_auth`'s requirements; return the blueprint.

        A view inside that carries its own ``@require_auth(...)`` must pass both checks, so the stricter wins.
        ``AUTHGEAR_LOGIN_URL`` sends browsers to the login page, as for :func:`require_auth`.
        """
        if not isinstance(blueprint, Blueprint):
            raise ConfigurationError("Authgear.protect() takes a flask.Blueprint")
        requirements = requirements.with_options(**options)

        def authenticate_blueprint_request() -> None:
            try:
                authenticate(requirements)
            except AuthgearError as error:
                redirect_to_login(error)
                raise

        blueprint.before_request(authenticate_blueprint_request)
        return blueprint

    # -- errors ------------------------------------------------------------------------------------------

    def error_handler(self, func: ErrorHandler) -> ErrorHandler:
        """Register ``func(error) -> response`` to answer every :class:`AuthgearError` (usable as a decorator).

        Flask's own ``@app.errorhandler(AuthgearError)`` (or a subclass such as ``ForbiddenError``) works too.
        An ``async def`` handler is awaited through ``app.ensure_sync``, as Flask runs its own error handlers.
        """
        _check_async_ready(func, "the error handler")
        self._error_handler = func
        return func

    def _handle_error(self, error: AuthgearError) -> ResponseReturnValue:
        if self._error_handler is not None:
            answer = current_app.ensure_sync(self._error_handler)(error)
            return cast("ResponseReturnValue", not_awaitable(answer, "the error handler"))
        return error_response(error, self._current_state().settings.realm)


def app_settings(app: Flask) -> Settings:
    """The settings ``app`` verifies with: its extension's when initialised, else read as the extension would
    (its ``AUTHGEAR_*`` config, then the environment); the CLI, the test client and webhooks use it for an app
    that may have no extension."""
    state = app.extensions.get(STATE_KEY)
    if isinstance(state, _AppState):
        return state.settings
    return Settings.load(app.config)


def error_response(error: AuthgearError, realm: str = "authgear") -> Response:
    """The default answer to an error: its status, RFC 6750 challenge, ``Cache-Control: no-store``, JSON body."""
    return Response(error.body(), status=error.status_code, headers=error.headers(realm))


class HeaderScrubber:
    """Wraps ``app.wsgi_app``, as werkzeug's ``ProxyFix``: one pass over the environ before Flask sees the request,
    the core's, as the WSGI middleware makes it. Client-supplied ``X-Authgear-*`` headers are removed (kept in
    trusted proxy mode from a trusted peer, which overwrites them), and the answer of a request that was
    authenticated carries ``Vary: Authorization, Cookie``, so a shared HTTP cache never serves one user's answer to
    another.
    """

    __slots__ = ("verifier", "wsgi_app")

    def __init__(self, wsgi_app: WSGIApplication, verifier: Verifier) -> None:
        self.wsgi_app = wsgi_app
        self.verifier = verifier

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


def _request_environ() -> WSGIEnvironment:
    """The current request's environ, read through werkzeug's documented ``_get_current_object``: reading
    ``request.environ`` through the proxy first fails a lookup on the proxy itself, which builds an
    AttributeError message on every read, several times per request."""
    environ: WSGIEnvironment = request._get_current_object().environ  # type: ignore[attr-defined]
    return environ


def _state() -> _AppState:
    state = current_app._get_current_object().extensions.get(STATE_KEY)  # type: ignore[attr-defined]
    if not isinstance(state, _AppState):
        raise RuntimeError(
            "flask-authgear is not initialised for this app: call Authgear(app) or ext.init_app(app) first"
        )
    return state


# -- requirements --------------------------------------------------------------------------------------------


def authenticate(requirements: Requirements) -> AuthgearUser | None:
    """The work behind :func:`verify_request`, with pre-built requirements (used by the decorator)."""
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


def redirect_to_login(error: AuthgearError) -> None:
    """Answer a protected view's refusal with a redirect to ``AUTHGEAR_LOGIN_URL`` (raised through ``abort``)
    when the request is a browser's asking for a page and ``error`` is a 401; return otherwise, so the caller
    raises ``error``. The rule is the core's (:func:`~flask_authgear.core.login.login_redirect`)."""
    found = login_redirect(_request_environ(), error, _state().settings.login_url)
    if found is None:
        return
    status, location = found
    response = redirect(location, code=status)
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Accept")  # the same request from an API client gets the 401
    abort(response)


def verify_request(
    *, requirements: Requirements = DEFAULT_REQUIREMENTS, **options: Unpack[RouteOptions]
) -> AuthgearUser | None:
    """Authenticate the current request and check the route's requirements; return the user.

    Returns None for a CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) and, with
    ``optional=True``, for a request without credentials. Runs the extension's :meth:`~Authgear.user_loader` once
    per request. Raises an :class:`AuthgearError` otherwise (the extension turns it into the 400/401/403/503
    response). The requirements are those of :func:`require_auth`.
    """
    return authenticate(requirements.with_options(**options))


@overload
def require_auth(view: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def require_auth(
    *, requirements: Requirements = DEFAULT_REQUIREMENTS, **options: Unpack[RouteOptions]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def require_auth(
    view: Callable[P, R] | None = None,
    /,
    *,
    requirements: Requirements = DEFAULT_REQUIREMENTS,
    **options: Unpack[RouteOptions],
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view: ``@require_auth`` or ``@require_auth(roles=["admin"], max_auth_age=300)``.

    The options (``optional``, ``roles``, ``all_roles``, ``verified``, ``allow_anonymous``, ``allow_machine``,
    ``scopes``, ``max_auth_age``) are the fields of :class:`~flask_authgear.core.requirements.Requirements`,
    which says what each asks; a mistake raises :class:`ConfigurationError` here, when the route is declared.
    ``requirements=`` passes a ready set (shared by several routes); options given beside it replace its own.

    A CORS preflight passes without authentication; any other ``OPTIONS`` request is checked. Async views work
    through ``app.ensure_sync``. With ``AUTHGEAR_LOGIN_URL`` set, a browser asking for the page without valid
    credentials is redirected there instead of the 401 (see :func:`redirect_to_login`).
    """
    requirements = requirements.with_options(**options)

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        # Flask already runs this wrapper through app.ensure_sync; only an async view needs converting inside
        # it, and that is known now, not on every request.
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                authenticate(requirements)
            except AuthgearError as error:
                redirect_to_login(error)
                raise
            if is_async:
                return cast(R, current_app.ensure_sync(func)(*args, **kwargs))
            return func(*args, **kwargs)

        return guarding(func, wrapper)

    if view is not None:
        return decorator(view)
    return decorator


# -- the current user ----------------------------------------------------------------------------------------


def get_current_user() -> AuthgearUser | None:
    """The user authenticated for this request, or None.

    In a request that no check ran for yet (a view without :func:`require_auth`), the first call authenticates
    the request as ``@require_auth(optional=True)`` would, and the answer is kept for the rest of the request.
    """
    try:
        environ = _request_environ()
    except RuntimeError:  # outside a request
        return None
    if ENVIRON_USER in environ:
        user: AuthgearUser | None = environ[ENVIRON_USER]
        return user
    return _authenticate_on_first_read(environ)


#: The rules of a first read of :data:`current_user`: those of ``@require_auth(optional=True)``.
_FIRST_READ = Requirements(optional=True)


def _authenticate_on_first_read(environ: WSGIEnvironment) -> AuthgearUser | None:
    """Authenticate with optional semantics, where anything but a user reads as no user: missing, invalid or
    refused credentials, an Authgear outage, a user the loader does not know. Reading :data:`current_user` never
    raises, so a page that only shows who is signed in keeps working; routes that need a user say so with
    :func:`require_auth`, and their refusals are answered as usual."""
    if not has_app_context() or not isinstance(current_app.extensions.get(STATE_KEY), _AppState):
        return None  # this app verifies nothing: no user, and nothing stored for a check that never ran
    try:
        return authenticate(_FIRST_READ)
    except AuthgearError:
        return None  # authenticate() stored "no user" for the request
    except Exception:
        # The app's user loader failed: the request has no user, and the app learns why from the log.
        logger.exception("the user loader failed while current_user was read; the request has no user")
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


def _current_user_or_no_user() -> AuthgearUser | _NoUser:
    user = get_current_user()
    return _NO_USER if user is None else user


#: The current request's :class:`AuthgearUser`, as flask-login's ``current_user``. In a view without
#: :func:`require_auth` the first read authenticates with ``optional=True`` semantics and never raises. Without a
#: user (no or invalid credentials outside a protected route, no credentials on an optional one) it is falsy and
#: ``current_user.is_authenticated`` is False; call :func:`get_current_user` to get the plain object or None.
current_user: AuthgearUser = cast(AuthgearUser, LocalProxy(_current_user_or_no_user))


# -- the app's own user ---------------------------------------------------------------------------------------


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
    loaded = environ.get(_ENVIRON_APP_USER)
    if loaded is not None and loaded[0] == user:
        return  # a second check in the same request: the loader already answered for this user
    what = "the machine loader" if user.is_machine else "the user loader"
    app_user = not_awaitable(current_app.ensure_sync(loader)(user), what)
    if app_user is None:
        environ.pop(_ENVIRON_APP_USER, None)
        if user.is_machine:
            raise InvalidTokenError("The client is not known to this application.")
        raise InvalidTokenError("The user is not known to this application.")
    environ[_ENVIRON_APP_USER] = (user, app_user)


def get_app_user() -> Any:
    """The user loader's answer for this request's authenticated user, or None (no user, or no loader)."""
    user = get_current_user()
    if user is None:
        return None
    loaded = _request_environ().get(_ENVIRON_APP_USER)
    return loaded[1] if loaded is not None and loaded[0] == user else None


#: The user loader's answer for the current request (see :meth:`Authgear.user_loader`); falsy without one.
current_app_user: Any = LocalProxy(get_app_user)


# -- templates and the decorator-order check ------------------------------------------------------------------


def _template_context() -> dict[str, Any]:
    """Jinja templates see ``current_user`` and ``current_app_user``, as with flask-login."""
    return {"current_user": current_user, "current_app_user": current_app_user}


#: Functions that a guarding decorator (require_auth, require_webhook) wrapped, and the wrappers it returned
#: (weakly held: they die with their module).
_protected_views: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
_guards: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
W = TypeVar("W", bound=Callable[..., Any])


def guarding(func: Callable[..., Any], wrapper: W) -> W:
    """Record that ``wrapper`` guards ``func``, for :func:`check_view_protection`; returns ``wrapper``."""
    _protected_views.add(func)
    _guards.add(wrapper)
    return wrapper


def _wrapped_chain(func: Callable[..., Any]) -> list[Callable[..., Any]]:
    """``func`` and the functions it wraps, following ``__wrapped__`` as ``functools.wraps`` sets it."""
    chain = [func]
    while (inner := getattr(chain[-1], "__wrapped__", None)) is not None and inner not in chain:
        chain.append(inner)
    return chain


def check_view_protection(app: Flask) -> None:
    """Raise :class:`ConfigurationError` for a view registered without the ``@require_auth`` (or
    ``@require_webhook``) written for it.

    Such a decorator written above ``@app.route`` wraps the function after the route registered it, so the
    route serves the unprotected function. The extension runs this check at ``init_app`` and before the app's
    first request, and keeps refusing requests until the mistake is fixed.
    """
    guarded: set[Callable[..., Any]] = set()
    for view in app.view_functions.values():
        chain = _wrapped_chain(view)
        for index, func in enumerate(chain):
            if func in _guards:
                guarded.update(chain[index:])
                break
    meant = {func for original in list(_protected_views) for func in _wrapped_chain(original)}
    for endpoint, view in app.view_functions.items():
        if view in meant and view not in guarded:
            raise ConfigurationError(
                f"view {endpoint!r} is registered without its @require_auth or @require_webhook: write that "
                "decorator below @app.route / @blueprint.route (the route decorator must be the outermost)"
            )


def _check_views_on_first_request(app: Flask, **extra: Any) -> None:
    """``request_started`` receiver: the check once all routes exist, then it disconnects itself (no cost after
    the first request). Until it passes, every request of the app fails with the error."""
    check_view_protection(app)
    request_started.disconnect(_check_views_on_first_request, sender=app)


def _install_app_hooks(app: Flask) -> None:
    """The template context and the decorator-order check, installed once per app."""
    check_view_protection(app)
    if _template_context not in app.template_context_processors[None]:
        app.context_processor(_template_context)
    request_started.connect(_check_views_on_first_request, sender=app)
