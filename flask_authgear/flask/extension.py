"""The Authgear extension: settings per app, loaders, blueprints, error answers."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, Unpack

from flask import Blueprint, Flask, Response, current_app, has_app_context, request_started

from ..config import Settings
from ..core.requirements import DEFAULT_REQUIREMENTS, Requirements, RouteOptions
from ..core.verifier import Verifier
from ..errors import AuthgearError, ConfigurationError
from .current import STATE_KEY, L, UserLoader, _AppState, _check_async_ready, _template_context
from .decorator_order import _check_views_on_first_request, check_view_protection
from .decorators import _protect_view

__all__ = ["EXTENSION_KEY", "Authgear", "app_settings", "error_response"]

#: ``app.extensions`` key of the :class:`Authgear` extension, as Flask's convention wants.
EXTENSION_KEY = "authgear"


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
        self._last: Callable[[], Flask | None] = lambda: None
        self._user_loader: UserLoader | None = None
        self._machine_loader: UserLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **settings: Any) -> None:
        """Validate the settings (a bad value raises :class:`ConfigurationError` now) and install the hooks."""
        verifier = Verifier(Settings.load(app.config, **{**self._defaults, **settings}))
        self._last = weakref.ref(app)
        # Around the whole Flask app, so no before_request function, view or error handler can read a forged
        # identity header; the first before_request hook does the same for a request that bypassed the wrapper
        # (a mounted app whose dispatcher holds the bare wsgi_app), and is a no-op for one that passed it.
        state = app.wsgi_app if isinstance(app.wsgi_app, _AppState) else _AppState(app.wsgi_app)
        state.verifier, state.extension = verifier, self
        app.wsgi_app = app.extensions[STATE_KEY] = state  # type: ignore[method-assign]
        app.extensions[EXTENSION_KEY] = self
        hooks = app.before_request_funcs.setdefault(None, [])
        if state.scrub_bypassed not in hooks:
            hooks.insert(0, state.scrub_bypassed)
        # An app's own handler for AuthgearError, registered before init_app, is kept; one registered after
        # replaces this one, as Flask's handlers do.
        if AuthgearError not in app.error_handler_spec[None][None]:
            app.register_error_handler(AuthgearError, error_response)
        if _template_context not in app.template_context_processors[None]:
            app.context_processor(_template_context)
        check_view_protection(app)
        request_started.connect(_check_views_on_first_request, sender=app)

    def _current_state(self) -> _AppState:
        """The state of the current app, or of the app this extension was last initialised for."""
        app = current_app._get_current_object() if has_app_context() else self._last()  # type: ignore[attr-defined]
        state = None if app is None else app.extensions.get(STATE_KEY)
        if not isinstance(state, _AppState) or state.extension is not self:
            raise RuntimeError(
                "this Authgear extension is not initialised for this app: call Authgear(app) or ext.init_app(app)"
            )
        return state

    @property
    def verifier(self) -> Verifier:
        """The core verifier of the current app (or of the app this extension was last initialised for)."""
        return self._current_state().verifier

    @property
    def settings(self) -> Settings:
        """The validated settings of the current app (or of the app this extension was last initialised for)."""
        return self.verifier.settings

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
        blueprint.before_request(functools.partial(_protect_view, requirements.with_options(**options)))
        return blueprint


def app_settings(app: Flask) -> Settings:
    """The settings ``app`` verifies with: its extension's when initialised, else read as the extension would
    (its ``AUTHGEAR_*`` config, then the environment); the CLI, the test client and webhooks use it for an app
    that may have no extension."""
    state = app.extensions.get(STATE_KEY)
    if isinstance(state, _AppState):
        return state.verifier.settings
    return Settings.load(app.config)


def error_response(error: AuthgearError) -> Response:
    """The default answer to ``error``: its status, RFC 6750 challenge in the current app's realm,
    ``Cache-Control: no-store`` and JSON body.

    The extension answers every :class:`AuthgearError` with it. To change the answers, register Flask's own
    ``@app.errorhandler(AuthgearError)`` (or a subclass such as ``ForbiddenError``) and call this inside it for
    the default answer to add to.
    """
    state = current_app.extensions.get(STATE_KEY)
    realm = state.verifier.settings.realm if isinstance(state, _AppState) else "authgear"
    return Response(error.body(), status=error.status_code, headers=error.headers(realm))
