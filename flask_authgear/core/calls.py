"""The one rule for every function an app hands the library: a user loader, an error handler, a webhook handler.

A plain function is called. An ``async def`` function is run to completion before its result is used: by Flask's
``app.ensure_sync`` (as Flask runs async views and error handlers) in the Flask adapter, by :func:`run_sync`
(a fresh event loop per call, as ``asyncio.run`` does) in plain WSGI, which has no loop of its own.

What is never done is to take a coroutine for an answer: a coroutine object is truthy and is not None, so a user
loader that returns one without it being awaited would let every user in, and a webhook handler's work would never
run. A function that returns an awaitable without being an ``async def`` itself (a lambda around one, a class
with an ``async __call__``) is therefore refused when it answers, and an async generator function, which has no
single answer, when it is registered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = ["check_callable", "not_awaitable", "run_sync"]

F = TypeVar("F", bound=Callable[..., Any])


def check_callable(func: Any, what: str) -> None:
    """Refuse, when it is registered, a ``func`` that cannot give an answer; ``what`` names it in the message."""
    if not callable(func):
        raise ConfigurationError(f"{what} must be a function, got {type(func).__name__}")
    if inspect.isasyncgenfunction(func):
        raise ConfigurationError(f"{what} is an async generator, which has no answer to give: write it without 'yield'")


def not_awaitable(value: Any, what: str) -> Any:
    """``value``, unless it is an awaitable that nobody awaited: then a :class:`TypeError`, never a value."""
    if inspect.isawaitable(value) or inspect.isasyncgen(value):
        if inspect.iscoroutine(value):
            value.close()  # it will never run; closing it spares a "never awaited" warning on top of the error
        raise TypeError(
            f"{what} returned {type(value).__name__} instead of its answer: declare it 'async def' itself "
            "so that it is awaited, or make it return the answer"
        )
    return value


def run_sync(func: F) -> F:
    """``func`` itself, or for an ``async def`` a function that runs it to completion in a new event loop.

    For plain WSGI, which calls the app from threads that run no event loop. Called from a thread that does run
    one, it raises :class:`RuntimeError` (``asyncio.run``'s rule) rather than block that loop.
    """
    if not inspect.iscoroutinefunction(func):
        return func
    # Imported for an async callable only, so that ``import flask_authgear`` does not load asyncio for every app.
    import asyncio

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(func(*args, **kwargs))

    return run  # type: ignore[return-value]
