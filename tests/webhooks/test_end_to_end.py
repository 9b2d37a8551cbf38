"""End to end: the app's own ``oidc.jwt.pre_create`` hook adds a claim to the tokens it later verifies.

Authgear calls the hook (signed, over HTTP) while it mints an access token and applies the answer's
``mutations.jwt.payload``; the local server does the same, so the claim an app adds shows up in
``current_user.claims`` on the app's next authenticated request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from flask_authgear import Authgear, WebhookEvent, Webhooks, current_user, require_auth
from flask_authgear.testing import AuthgearTestServer, HookError
from flask_authgear.testing.client import configure
from tests.support.app_server import AppServer
from tests.support.auth import bearer

PLAN = "https://example.com/claims/plan"


def hooked_app(server: AuthgearTestServer, seen: list[WebhookEvent]) -> Flask:
    app = Flask("jwt-hook-app")
    configure(app, server, webhook_secret=server.webhook_secret)
    Authgear(app)
    hooks = Webhooks(app, "/authgear/webhook")

    @hooks.on("oidc.jwt.pre_create")
    def add_plan(event: WebhookEvent) -> Any:
        seen.append(event)
        if event.user_id == "blocked":
            return event.deny("This account cannot sign in.", "Signed out")
        return event.allow(jwt_claims={PLAN: "gold"})

    @app.get("/me")
    @require_auth
    def me() -> Any:
        return {"id": current_user.id, "plan": current_user.claims.get(PLAN)}

    return app


@pytest.fixture
def served(server: AuthgearTestServer) -> Iterator[tuple[str, list[WebhookEvent]]]:
    seen: list[WebhookEvent] = []
    with AppServer(hooked_app(server, seen)) as http:
        base = http.url
        server.jwt_hook = f"{base}/authgear/webhook"
        try:
            yield base, seen
        finally:
            server.jwt_hook = None


def test_a_claim_added_by_the_apps_hook_is_read_through_current_user(
    server: AuthgearTestServer, served: tuple[str, list[WebhookEvent]]
) -> None:
    base, seen = served
    token = server.issue_token("ada")
    answer = requests.get(f"{base}/me", headers=bearer(token), timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"id": "ada", "plan": "gold"}
    (event,) = seen
    assert event.type == "oidc.jwt.pre_create" and event.is_blocking and event.user_id == "ada"


def test_a_token_the_hook_refuses_is_never_minted(
    server: AuthgearTestServer, served: tuple[str, list[WebhookEvent]]
) -> None:
    _, seen = served
    with pytest.raises(HookError, match="refused"):
        server.issue_token("blocked")
    assert [event.user_id for event in seen] == ["blocked"]


def test_a_hook_signed_with_another_secret_adds_nothing(
    server: AuthgearTestServer, served: tuple[str, list[WebhookEvent]]
) -> None:
    _, seen = served
    real = server.webhook_secret
    server.webhook_secret = "not-the-apps-secret"
    try:
        with pytest.raises(HookError):
            server.issue_token("ada")
    finally:
        server.webhook_secret = real
    assert seen == []  # the app refused the forged call before its handler ran
