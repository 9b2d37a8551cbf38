"""require_auth and auth.protect's hook: verify_request for a view, and the browser's way to sign in."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar, Unpack, cast, overload

from flask import Response, abort, current_app

from ..core.login import login_redirect
from ..core.requirements import DEFAULT_REQUIREMENTS, Requirements, RouteOptions
from ..errors import AuthgearError
from .current import _authenticate, _request_environ, _state
from .decorator_order import GUARDED, GUARDS

__all__ = ["require_auth"]

P = ParamSpec("P")
R = TypeVar("R")


def _protect_view(requirements: Requirements) -> None:
    """Authenticate for a protected view (``@require_auth``, ``auth.protect``) as ``verify_request`` does; a
    browser asking for the page without valid credentials is sent to ``AUTHGEAR_LOGIN_URL`` instead of the 401
    (the core's rule, :func:`~flask_authgear.core.login.login_redirect`), through ``abort``."""
    try:
        _authenticate(requirements)
    except AuthgearError as error:
        found = login_redirect(_request_environ(), error, _state().verifier.settings.login_url)
        if found is not None:
            status, headers, body = found
            abort(Response(body, status, headers))
        raise


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
    credentials is redirected there instead of the 401.
    """
    requirements = requirements.with_options(**options)

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        # Flask already runs this wrapper through app.ensure_sync; only an async view needs converting inside
        # it, and that is known now, not on every request.
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            _protect_view(requirements)
            if is_async:
                return cast(R, current_app.ensure_sync(func)(*args, **kwargs))
            return func(*args, **kwargs)

        GUARDS.add(wrapper)
        GUARDED.add(func)
        return wrapper

    return decorator if view is None else decorator(view)
