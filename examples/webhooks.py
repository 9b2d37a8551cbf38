"""An example Flask app that receives Authgear webhooks at ``POST /authgear/webhook``.

* ``user.created`` (non-blocking): the new user is recorded once, even when the event arrives twice (two hook
  URLs, a replay). Authgear sends it only once: the row is written before the answer, so nothing is lost.
* ``user.pre_create`` (blocking): sign-ups with an e-mail address of a blocked domain are refused.
* ``oidc.jwt.pre_create`` (blocking): the user's plan is added to the access token as a claim, where the API
  that verifies the token (``require_auth``) can read it.

In the Authgear portal (Advanced > Hooks), point the three events at ``https://<your app>/authgear/webhook``
and copy the webhook signature secret into ``AUTHGEAR_WEBHOOK_SECRET``::

    AUTHGEAR_WEBHOOK_SECRET=... python examples/webhooks.py --port 5000
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask

from flask_authgear import WebhookAnswer, WebhookEvent, Webhooks

BLOCKED_DOMAINS = frozenset({"blocked.example"})
PLAN_CLAIM = "https://example.com/claims/plan"


class Users:
    """Stands in for the app's database: a table of users keyed by Authgear user id."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def upsert(self, user_id: str, email: str | None) -> None:
        # Keyed by the user id, so even a delivery the dispatcher has not seen (another worker, a restart)
        # leaves one row: the handler is idempotent by itself, the dispatcher only spares the work.
        with self._lock:
            self.rows.setdefault(user_id, {"email": email, "plan": "free"})

    def plan(self, user_id: str | None) -> str:
        return self.rows.get(user_id or "", {}).get("plan", "free")


def _email(event: WebhookEvent) -> str | None:
    user = event.payload.get("user")
    attributes = user.get("standard_attributes") if isinstance(user, Mapping) else None
    email = attributes.get("email") if isinstance(attributes, Mapping) else None
    return email if isinstance(email, str) else None


def create_app(config: Mapping[str, Any] | None = None, users: Users | None = None) -> Flask:
    """Build the app from ``config`` (``AUTHGEAR_*`` keys); a setting it lacks comes from the ``AUTHGEAR_*``
    environment variables, as the extension reads them."""
    app = Flask(__name__)
    app.config.update(config or {})
    users = users if users is not None else Users()
    app.extensions["example_users"] = users
    hooks = Webhooks(app, "/authgear/webhook")

    @hooks.on("user.created")
    def user_created(event: WebhookEvent) -> None:
        if event.user_id is not None:
            users.upsert(event.user_id, _email(event))

    @hooks.on("user.pre_create")
    def user_pre_create(event: WebhookEvent) -> WebhookAnswer:
        email = _email(event) or ""
        if email.rpartition("@")[2].lower() in BLOCKED_DOMAINS:
            return event.deny("Sign-ups with this e-mail domain are not accepted.", "Sign-up refused")
        return event.allow()

    @hooks.on("oidc.jwt.pre_create")
    def jwt_pre_create(event: WebhookEvent) -> WebhookAnswer:
        return event.allow(jwt_claims={PLAN_CLAIM: users.plan(event.user_id)})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    create_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
