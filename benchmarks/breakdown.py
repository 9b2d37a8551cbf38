"""Where the Flask extension's own per-request work goes, with a repeated token (JWT warm).

Each variant removes one piece from the full extension and is timed against the bare app; the difference to
the full extension is what that piece costs. The variants unwrap the extension's wsgi_app wrapper, which only a
benchmark should do: they are measurements, not configurations to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Flask, request

from flask_authgear import Authgear, current_user, get_current_user, require_auth
from flask_authgear.core import Verifier

from .harness import Case, WSGICaller, environ, run_rounds

FULL = "full extension (@require_auth, view reads current_user)"
NO_WRAPPER = "  without the wsgi_app wrapper (X-Authgear-* removal, Vary)"
VIEW_PLAIN = "  view calls get_current_user() instead of the current_user proxy"
DIRECT = "a view calling Verifier.verify_token itself (no extension hooks)"
ROWS = (FULL, NO_WRAPPER, VIEW_PLAIN, DIRECT)


def _app(name: str, settings: dict[str, Any], *, wrapper: bool = True, proxy: bool = True) -> Flask:
    app = Flask(name)
    Authgear(app, **settings)
    if not wrapper:
        app.wsgi_app = app.wsgi_app.wsgi_app  # type: ignore[attr-defined,method-assign]

    if proxy:

        @app.get("/me")
        @require_auth
        def me() -> dict[str, Any]:
            return {"sub": current_user.id}

    else:

        @app.get("/me")
        @require_auth
        def me_plain() -> dict[str, Any]:
            user = get_current_user()
            assert user is not None
            return {"sub": user.id}

    return app


def _direct(settings: dict[str, Any]) -> Flask:
    from flask_authgear import Settings

    verifier = Verifier(Settings(**settings))
    app = Flask("direct")

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"sub": verifier.verify_token(request.environ["HTTP_AUTHORIZATION"][7:]).id}

    return app


def measure(settings: dict[str, Any], token: str, bare: Flask, calls: int, rounds: int) -> list[tuple[str, float]]:
    """(row, overhead over the bare app in seconds) for each variant."""
    env = environ("/me", f"Bearer {token}")
    baseline = Case("bare", WSGICaller(bare).batch([env] * calls))
    apps: Sequence[tuple[str, Flask]] = (
        (FULL, _app("full", settings)),
        (NO_WRAPPER, _app("no_wrapper", settings, wrapper=False)),
        (VIEW_PLAIN, _app("view_plain", settings, proxy=False)),
        (DIRECT, _direct(settings)),
    )
    cases = []
    for name, app in apps:
        caller = WSGICaller(app)
        caller.check(env)
        cases.append(Case(name, caller.batch([env] * calls), baseline=baseline))
    run_rounds(cases, rounds)
    return [(case.name, case.median_overhead) for case in cases]
