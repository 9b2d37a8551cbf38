"""The decorator-order check: a view registered without its guarding decorator is refused."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from flask import Flask, request_started

from ..errors import ConfigurationError

__all__ = ["GUARDED", "GUARDS", "check_view_protection"]

#: The wrappers that ``@require_auth`` returned, and the functions they guard, each weakly held: they die with
#: their module. The functions are kept apart from the wrappers, since a wrapper written above the route is held
#: by nothing once an app factory that declared it returns, while the route still holds the bare function.
GUARDS: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
GUARDED: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def _wrapped_chain(func: Callable[..., Any]) -> list[Callable[..., Any]]:
    """``func`` and the functions it wraps, following ``__wrapped__`` as ``functools.wraps`` sets it."""
    chain = [func]
    while (inner := getattr(chain[-1], "__wrapped__", None)) is not None and inner not in chain:
        chain.append(inner)
    return chain


def check_view_protection(app: Flask) -> None:
    """Raise :class:`ConfigurationError` for a view registered without the ``@require_auth`` written for it.

    Such a decorator written above ``@app.route`` wraps the function after the route registered it, so the
    route serves the unprotected function. The extension runs this check at ``init_app`` and before the app's
    first request, and keeps refusing requests until the mistake is fixed.
    """
    guarded: set[Callable[..., Any]] = set()
    for view in app.view_functions.values():
        chain = _wrapped_chain(view)
        for index, func in enumerate(chain):
            if func in GUARDS:
                guarded.update(chain[index:])
                break
    meant = {func for original in list(GUARDED) for func in _wrapped_chain(original)}
    for endpoint, view in app.view_functions.items():
        if view in meant and view not in guarded:
            raise ConfigurationError(
                f"view {endpoint!r} is registered without its @require_auth: write that "
                "decorator below @app.route / @blueprint.route (the route decorator must be the outermost)"
            )


def _check_views_on_first_request(app: Flask, **extra: Any) -> None:
    """``request_started`` receiver: the check once all routes exist, then it disconnects itself (no cost after
    the first request). Until it passes, every request of the app fails with the error."""
    check_view_protection(app)
    request_started.disconnect(_check_views_on_first_request, sender=app)
