"""The local server's token endpoint serves the client-credentials grant as Authgear's does
(``pkg/lib/oauth/handler/handler_token.go``): the same checks in the same order, the same error answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from flask_authgear import Settings, Verifier
from flask_authgear.testing import AuthgearTestServer, MachineClient

API = "https://api.example.com/orders"
OTHER = "https://api.example.com/billing"


@pytest.fixture
def kit(authgear_server: AuthgearTestServer) -> Iterator[tuple[AuthgearTestServer, MachineClient]]:
    authgear_server.register_resource(OTHER)
    client = authgear_server.register_machine_client(
        "svc", resources={API: ["read:orders", "write:orders"]}, client_secret="s3cret"
    )
    yield authgear_server, client


def post(server: AuthgearTestServer, auth: Any = None, **form: str) -> requests.Response:
    return requests.post(f"{server.endpoint}/oauth2/token", data=form, auth=auth, timeout=5)


def test_a_registered_machine_gets_a_token_for_its_resource(kit: Any) -> None:
    server, _ = kit
    response = post(
        server,
        grant_type="client_credentials",
        resource=API,
        client_id="svc",
        client_secret="s3cret",
        scope="read:orders",
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 1800, "read:orders")
    identity = Verifier(Settings(**server.settings(audience=[API]))).verify_token(body["access_token"])
    assert identity.is_machine and identity.client_id == "svc" and identity.scopes == {"read:orders"}


def test_without_scope_every_granted_scope_and_basic_authentication(kit: Any) -> None:
    server, _ = kit
    response = post(server, ("svc", "s3cret"), grant_type="client_credentials", resource=API)
    assert response.status_code == 200
    assert response.json()["scope"] == "read:orders write:orders"


GOOD = {"grant_type": "client_credentials", "resource": API, "client_id": "svc", "client_secret": "s3cret"}

ERRORS: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown-client": ({"client_id": "nobody"}, "invalid_client", "invalid client ID"),
    "no-client": ({"client_id": ""}, "invalid_client", "invalid client ID"),
    "other-grant": ({"grant_type": "password"}, "unsupported_grant_type", "grant type is not supported"),
    "no-resource": ({"resource": ""}, "invalid_target", "resource is required"),
    "no-secret": ({"client_secret": ""}, "invalid_client", "client secret is required"),
    "no-resource-before-no-secret": ({"resource": "", "client_secret": ""}, "invalid_target", "resource is required"),
    "user-client": ({"client_id": "test-client"}, "unauthorized_client", "grant type is not allowed for this client"),
    "wrong-secret": ({"client_secret": "nope"}, "invalid_request", "invalid client secret"),
    "endpoint-prefixed": (
        {"resource": "{endpoint}/api"},
        "invalid_target",
        "resource URI must not be a prefixed by authgear endpoint",
    ),
    "unknown-resource": ({"resource": "https://nowhere.example"}, "invalid_target", "resource not found"),
    "not-associated": ({"resource": OTHER}, "invalid_target", "client is not associated with the resource"),
    "scope-not-granted": ({"scope": "read:orders pay"}, "invalid_scope", "specified scope is not allowed: pay"),
    "double-space": ({"scope": "read:orders  write:orders"}, "invalid_scope", "specified scope is not allowed: "),
}


@pytest.mark.parametrize("case", list(ERRORS.values()), ids=list(ERRORS))
def test_refusals_answer_as_authgear(kit: Any, case: tuple[dict[str, Any], str, str]) -> None:
    server, _ = kit
    changes, error, description = case
    form = {**GOOD, **{k: v.format(endpoint=server.endpoint) for k, v in changes.items()}}
    response = post(server, **{k: v for k, v in form.items() if v})
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {"error": error, "error_description": description}


def test_only_post_and_the_grant_is_in_discovery(kit: Any) -> None:
    server, _ = kit
    assert requests.get(f"{server.endpoint}/oauth2/token", timeout=5).status_code == 405
    discovery = requests.get(f"{server.endpoint}/.well-known/openid-configuration", timeout=5).json()
    assert "client_credentials" in discovery["grant_types_supported"]
    assert discovery["token_endpoint"] == f"{server.endpoint}/oauth2/token"


@pytest.mark.parametrize(
    "uri", ["http://api.example.com", "https://", "https://u:p@api.example.com", "https://a.example?x=1", "https://a#f"]
)
def test_resources_are_held_to_authgears_format(authgear_server: AuthgearTestServer, uri: str) -> None:
    with pytest.raises(ValueError):
        authgear_server.register_resource(uri)


def test_a_refused_machine_client_registers_no_resource(authgear_server: AuthgearTestServer) -> None:
    authgear_server.register_machine_client("svc", resources={OTHER: ["read"]}, client_secret="s3cret")
    with pytest.raises(ValueError, match="invalid scope"):
        authgear_server.register_machine_client("bad", resources={API: ["read", "https://authgear.com/scopes/x"]})
    answer = post(authgear_server, **{**GOOD, "client_id": "svc", "scope": "read"}).json()
    assert answer == {"error": "invalid_target", "error_description": "resource not found"}
