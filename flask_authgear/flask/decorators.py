"""require_auth and verify_request: the doors to the one call, and the browser's way to sign in."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar, Unpack, cast, overload

from flask import abort, current_app, redirect

from ..core.login import login_redirect
from ..core.requirements import DEFAULT_REQUIREMENTS, Requirements, RouteOptions
from ..errors import AuthgearError
from ..user import AuthgearUser
from .current import authenticate
from .decorator_order import guarding
from .state import _request_environ, _state

P = ParamSpec("P")
R = TypeVar("R")


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
