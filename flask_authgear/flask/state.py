"""What every part of the extension reads per request: the app's state and the request's environ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app, request

from ..config import Settings
from ..core.verifier import Verifier

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .extension import Authgear


#: ``app.extensions`` key of the :class:`Authgear` extension, as Flask's convention wants.
EXTENSION_KEY = "authgear"
#: ``app.extensions`` key of the app's own state, found there in one read per request.
STATE_KEY = "authgear.state"


@dataclass(frozen=True, slots=True)
class _AppState:
    """What one app needs per request: its verifier (which holds its settings) and the extension that made it,
    whose loaders serve the app."""

    verifier: Verifier
    extension: Authgear


def app_settings(app: Flask) -> Settings:
    """The settings ``app`` verifies with: its extension's when initialised, else read as the extension would
    (its ``AUTHGEAR_*`` config, then the environment); the CLI, the test client and webhooks use it for an app
    that may have no extension."""
    state = app.extensions.get(STATE_KEY)
    if isinstance(state, _AppState):
        return state.verifier.settings
    return Settings.load(app.config)


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
