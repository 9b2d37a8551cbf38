"""``examples/webhooks.py`` does what its docstring says."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from tests.support.examples import load_example
from tests.support.webhooks import body_signature

SECRET = "whsec-example-0123456789"


example = load_example("webhooks")


def deliver(client: FlaskClient, event_type: str, payload: dict[str, Any], event_id: str = "evt-1") -> Any:
    body = json.dumps(
        {"id": event_id, "seq": 1, "type": event_type, "payload": payload, "context": {"timestamp": 1_790_000_000}}
    ).encode()
    signed = body_signature(body, SECRET)
    return client.post(
        "/authgear/webhook",
        data=body,
        headers={"X-Authgear-Body-Signature": signed},
        content_type="application/json",
    )


def user(user_id: str, email: str) -> dict[str, Any]:
    return {"user": {"id": user_id, "standard_attributes": {"email": email}}}


def test_user_created_is_stored_once() -> None:
    users = example.Users()
    client = example.create_app({"AUTHGEAR_WEBHOOK_SECRET": SECRET}, users).test_client()
    for _ in range(2):
        assert deliver(client, "user.created", user("u1", "a@example.com")).status_code == 200
    assert users.rows == {"u1": {"email": "a@example.com", "plan": "free"}}


def test_user_pre_create_denies_the_blocked_domain() -> None:
    client = example.create_app({"AUTHGEAR_WEBHOOK_SECRET": SECRET}).test_client()
    refused = deliver(client, "user.pre_create", user("u2", "x@Blocked.example")).get_json()
    assert refused == {
        "is_allowed": False,
        "reason": "Sign-ups with this e-mail domain are not accepted.",
        "title": "Sign-up refused",
    }
    assert deliver(client, "user.pre_create", user("u3", "x@example.com")).get_json() == {"is_allowed": True}


def test_jwt_pre_create_adds_the_plan_claim() -> None:
    users = example.Users()
    users.rows["u1"] = {"email": "a@example.com", "plan": "gold"}
    client = example.create_app({"AUTHGEAR_WEBHOOK_SECRET": SECRET}, users).test_client()
    token = {"iss": "https://p.authgear.cloud", "sub": "u1", "aud": ["https://p.authgear.cloud"]}
    answer = deliver(client, "oidc.jwt.pre_create", {**user("u1", "a@example.com"), "jwt": {"payload": token}})
    assert answer.get_json() == {
        "is_allowed": True,
        "mutations": {"jwt": {"payload": {**token, example.PLAN_CLAIM: "gold"}}},
    }
