"""Machines and scopes: Authgear's client-credentials tokens for an API resource, in Flask and behind the middleware.

Tokens are shaped as Authgear's reference shows (``aud`` a list of one resource, ``scope`` a string, ``sub``
``client_id_<client_id>``, none of the user claims), minted by the local server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify, render_template_string
from werkzeug.test import Client

from flask_authgear import Authgear, ConfigurationError, Settings, current_user, get_app_user, require_auth
from flask_authgear.core.jose import b64url_decode
from flask_authgear.core.json import loads_object
from flask_authgear.testing import AuthgearTestServer, configure
from flask_authgear.wsgi import AuthgearMiddleware
from tests.support.auth import bearer

API = "https://api.example.com/orders"
REALM = 'Bearer realm="authgear"'
NEEDS_USER = "This resource needs a signed-in user; a machine-to-machine token is not enough."
NO_SCOPE = "The access token lacks a required scope."


def machine(server: AuthgearTestServer, scopes: tuple[str, ...] = ("read:orders",), **claims: Any) -> str:
    client_id = claims.pop("client_id", "b892697a2075af58")
    return server.machine_token(client_id, resource=API, scopes=scopes, **claims)


def claims_of(token: str) -> dict[str, Any]:
    return loads_object(b64url_decode(token.split(".")[1]))


def test_machine_tokens_are_shaped_as_authgears(server: AuthgearTestServer) -> None:
    token = machine(server, ("read:orders", "write:orders"))
    header = loads_object(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": server.signing_key.kid}
    claims = claims_of(token)
    assert list(claims) == ["jti", "iss", "aud", "iat", "exp", "client_id", "scope", "sub"]
    assert claims["aud"] == [API]
    assert claims["client_id"] == "b892697a2075af58"
    assert claims["sub"] == "client_id_b892697a2075af58"
    assert claims["scope"] == "read:orders write:orders"
    assert claims["iss"] == server.endpoint and claims["exp"] - claims["iat"] == 1800
    assert len(claims["jti"]) == 64 and int(claims["jti"], 16) >= 0
    with pytest.raises(ValueError, match="prefixed by authgear endpoint"):
        server.machine_token("x", resource=server.endpoint + "/api")


# -- the identity ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_settings(server: AuthgearTestServer) -> Settings:
    return Settings(**server.settings(audience=[server.endpoint, API]))


def test_a_machine_is_not_a_user(server: AuthgearTestServer, api_settings: Settings) -> None:
    from flask_authgear import Verifier

    verifier = Verifier(api_settings)
    identity = verifier.verify_token(machine(server, ("read:orders", "write:orders")))
    assert identity.is_machine
    assert identity.id == "client_id_b892697a2075af58"
    assert identity.client_id == "b892697a2075af58"
    assert identity.scopes == frozenset({"read:orders", "write:orders"})
    assert identity.roles == frozenset() and identity.amr == () and identity.authenticated_at is None
    assert not (identity.is_anonymous or identity.is_verified or identity.can_reauthenticate)
    assert identity.to_dict()["is_machine"] is True
    user = verifier.verify_token(server.issue_token("alice"))
    assert not user.is_machine and user.scopes == frozenset({"openid", "offline_access"})


CLAIMS_THE_SHAPE = {
    "sub-of-another-client": {"sub": "client_id_someone-else"},
    "sub-without-prefix": {"sub": "b892697a2075af58"},
    "empty-client-id": {"client_id": "", "sub": "client_id_"},
    "client-id-not-a-string": {"client_id": ["b892697a2075af58"]},
    "auth-time": {"auth_time": 1755011418},
    "amr": {"amr": ["pwd"]},
    "roles": {"https://authgear.com/claims/user/roles": ["admin"]},
    "is-verified": {"https://authgear.com/claims/user/is_verified": True},
}


@pytest.mark.parametrize("claims", list(CLAIMS_THE_SHAPE.values()), ids=list(CLAIMS_THE_SHAPE))
def test_a_token_that_only_claims_the_shape_is_not_a_machine(
    server: AuthgearTestServer, api_settings: Settings, claims: dict[str, Any]
) -> None:
    from flask_authgear import Verifier

    identity = Verifier(api_settings).verify_token(machine(server, **claims))
    assert not identity.is_machine


# -- Flask -----------------------------------------------------------------------------------------------------


def flask_api(server: AuthgearTestServer, name: str, **settings: Any) -> tuple[Flask, Authgear]:
    app = Flask(name)
    configure(app, server, audience=[server.endpoint, API], **settings)
    auth = Authgear(app)

    def identity() -> Any:
        return jsonify(id=current_user.id, machine=current_user.is_machine, app_user=get_app_user())

    app.get("/me")(require_auth(identity))
    app.get("/orders", endpoint="orders")(require_auth(scopes=["read:orders"], allow_machine=True)(identity))
    app.post("/orders", endpoint="write")(
        require_auth(scopes=["read:orders", "write:orders"], allow_machine=True)(identity)
    )
    app.get("/both", endpoint="both")(require_auth(allow_machine=True)(identity))
    app.get("/user-scope", endpoint="user_scope")(require_auth(scopes="openid")(identity))
    app.get("/optional", endpoint="optional")(require_auth(optional=True)(identity))

    @app.get("/page")
    @require_auth(allow_machine=True)
    def page() -> str:
        return render_template_string(
            "{% if current_user.is_machine %}machine {{ current_user.client_id }}{% else %}person{% endif %}"
            "/{{ 'app' if current_app_user else 'none' }}"
        )

    return app, auth


@pytest.fixture(scope="module")
def api(server: AuthgearTestServer) -> Flask:
    return flask_api(server, "machines-api")[0]


Case = tuple[str, str, Callable[[AuthgearTestServer], str], int, str | None]

FLASK_CASES: dict[str, Case] = {
    "machine-on-a-user-route": ("GET", "/me", machine, 403, NEEDS_USER),
    "machine-optional-route": ("GET", "/optional", machine, 403, NEEDS_USER),
    "machine-with-the-scope": ("GET", "/orders", machine, 200, None),
    "machine-without-the-scope": ("GET", "/orders", lambda s: machine(s, ("write:orders",)), 403, NO_SCOPE),
    "machine-with-one-of-two": ("POST", "/orders", machine, 403, NO_SCOPE),
    "machine-with-both": ("POST", "/orders", lambda s: machine(s, ("write:orders", "read:orders")), 200, None),
    "machine-no-scope-at-all": ("GET", "/orders", lambda s: machine(s, ()), 403, NO_SCOPE),
    "machine-allowed-without-scopes": ("GET", "/both", machine, 200, None),
    "user-on-a-machine-route-without-scope": ("GET", "/orders", lambda s: s.issue_token("alice"), 403, NO_SCOPE),
    "user-with-the-scope": ("GET", "/orders", lambda s: s.issue_token("alice", scope="read:orders"), 200, None),
    "user-scope-route": ("GET", "/user-scope", lambda s: s.issue_token("alice"), 200, None),
    "user-scope-missing": ("GET", "/user-scope", lambda s: s.issue_token("alice", scope="email"), 403, NO_SCOPE),
    "user-on-both": ("GET", "/both", lambda s: s.issue_token("alice"), 200, None),
    "machine-of-another-api": (
        "GET",
        "/orders",
        lambda s: s.machine_token("x", resource="https://other.example.com", scopes=["read:orders"]),
        401,
        "The access token is not meant for this application; accepted audiences: {endpoint}, " + API + ".",
    ),
    "fake-machine-is-a-user": ("GET", "/me", lambda s: machine(s, sub="client_id_other"), 200, None),
}


def expected_challenge(status: int, description: str, path: str, method: str) -> str:
    if status == 401:
        return f'{REALM}, error="invalid_token", error_description="{description}"'
    challenge = f'{REALM}, error="insufficient_scope", error_description="{description}"'
    if description == NO_SCOPE:
        scope = "read:orders write:orders" if method == "POST" else "read:orders"
        scope = "openid" if path == "/user-scope" else scope
        challenge += f', scope="{scope}"'
    return challenge


@pytest.mark.parametrize("case", list(FLASK_CASES.values()), ids=list(FLASK_CASES))
def test_flask_routes(api: Flask, server: AuthgearTestServer, case: Case) -> None:
    method, path, token, status, description = case
    response = api.test_client().open(path, method=method, headers=bearer(token(server)))
    assert response.status_code == status, response.get_json()
    if description is None:
        return
    description = description.format(endpoint=server.endpoint)
    assert response.headers["WWW-Authenticate"] == expected_challenge(status, description, path, method)
    body = response.get_json()
    assert body["error_description"] == description
    if description == NO_SCOPE:
        assert body["error"] == "insufficient_scope" and body["scope"] == expected_challenge(
            status, description, path, method
        ).rsplit('scope="', 1)[1].rstrip('"')


def test_templates_and_the_identity_in_views(api: Flask, server: AuthgearTestServer) -> None:
    client = api.test_client()
    assert client.get("/page", headers=bearer(machine(server))).text == "machine b892697a2075af58/none"
    assert client.get("/page", headers=bearer(server.issue_token("alice"))).text == "person/none"
    answer = client.get("/orders", headers=bearer(machine(server))).get_json()
    assert answer == {"id": "client_id_b892697a2075af58", "machine": True, "app_user": None}


def test_the_user_loader_never_sees_a_machine_and_a_machine_loader_opts_in(server: AuthgearTestServer) -> None:
    app, auth = flask_api(server, "machines-loaders")
    seen: list[str] = []

    @auth.user_loader
    def load_user(user: Any) -> Any:
        seen.append(user.id)
        return {"person": user.id}

    client = app.test_client()
    # Without a machine loader a machine has no app user, and is not refused for it.
    assert client.get("/orders", headers=bearer(machine(server))).get_json()["app_user"] is None
    assert seen == []
    assert client.get("/both", headers=bearer(server.issue_token("alice"))).get_json()["app_user"] == {
        "person": "alice"
    }

    known = {"b892697a2075af58": {"service": "billing"}}

    @auth.machine_loader
    def load_machine(identity: Any) -> Any:
        return known.get(identity.client_id)

    assert client.get("/orders", headers=bearer(machine(server))).get_json()["app_user"] == {"service": "billing"}
    assert client.get("/page", headers=bearer(machine(server))).text == "machine b892697a2075af58/app"
    stranger = server.machine_token("stranger", resource=API, scopes=["read:orders"])
    refused = client.get("/orders", headers=bearer(stranger))
    assert refused.status_code == 401
    assert refused.get_json()["error_description"] == "The client is not known to this application."
    assert seen == ["alice"]


def test_blueprint_protection_takes_the_options(server: AuthgearTestServer) -> None:
    from flask import Blueprint

    app = Flask("machines-blueprint")
    configure(app, server, audience=[API])
    auth = Authgear(app)
    orders = auth.protect(Blueprint("orders", __name__), scopes=["read:orders"], allow_machine=True)
    orders.get("/list")(lambda: "listed")
    app.register_blueprint(orders)
    client = app.test_client()
    assert client.get("/list", headers=bearer(machine(server))).status_code == 200
    assert client.get("/list", headers=bearer(machine(server, ("other",)))).status_code == 403


BAD_OPTIONS = {
    "machine-with-roles": {"allow_machine": True, "roles": ["admin"]},
    "machine-verified": {"allow_machine": True, "verified": True},
    "machine-fresh-sign-in": {"allow_machine": True, "max_auth_age": 60},
    "empty-scopes": {"scopes": []},
    "scope-with-space": {"scopes": ["read orders"]},
    "scope-with-quote": {"scopes": ['read"']},
    "scope-not-a-string": {"scopes": [1]},
}


@pytest.mark.parametrize("options", list(BAD_OPTIONS.values()), ids=list(BAD_OPTIONS))
def test_impossible_options_are_refused_when_declared(server: AuthgearTestServer, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        require_auth(**options)
    with pytest.raises(ConfigurationError):
        AuthgearMiddleware(lambda e, s: [], protect={"/api": options}, **server.settings())


# -- the WSGI middleware ---------------------------------------------------------------------------------------


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    user, error = environ["authgear.user"], environ["authgear.error"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [
        json.dumps(
            {
                "user": None if user is None else user.id,
                "machine": None if user is None else user.is_machine,
                "error": None if error is None else error.description,
            }
        ).encode()
    ]


@pytest.fixture(scope="module")
def middleware(server: AuthgearTestServer) -> Client:
    app = AuthgearMiddleware(
        echo,
        protect={
            "/api": {},
            "/api/orders": {"scopes": ["read:orders"], "allow_machine": True},
            "/api/orders/admin": {"roles": ["admin"]},
        },
        public=["/api/health"],
        **server.settings(audience=[server.endpoint, API]),
    )
    return Client(app)


WSGI_CASES: dict[str, tuple[str, Callable[[AuthgearTestServer], str], int, str | None]] = {
    "machine-on-a-user-prefix": ("/api/me", machine, 403, NEEDS_USER),
    "machine-on-its-prefix": ("/api/orders/7", machine, 200, None),
    "machine-without-the-scope": ("/api/orders", lambda s: machine(s, ("x",)), 403, NO_SCOPE),
    "machine-on-a-nested-user-prefix": ("/api/orders/admin/x", machine, 403, NEEDS_USER),
    "machine-dot-segments": ("/api/orders/../me", machine, 403, NEEDS_USER),
    "user-on-the-machine-prefix-without-scope": ("/api/orders", lambda s: s.issue_token("alice"), 403, NO_SCOPE),
    "user-with-scope": ("/api/orders", lambda s: s.issue_token("alice", scope="read:orders"), 200, None),
    "user-elsewhere": ("/api/me", lambda s: s.issue_token("alice"), 200, None),
}


@pytest.mark.parametrize("case", list(WSGI_CASES.values()), ids=list(WSGI_CASES))
def test_middleware_prefixes(middleware: Client, server: AuthgearTestServer, case: Any) -> None:
    path, token, status, description = case
    response = middleware.get(path, headers=bearer(token(server)))
    assert response.status_code == status
    if description is not None:
        assert response.get_json()["error_description"] == description
        if description == NO_SCOPE:
            assert response.headers["WWW-Authenticate"].endswith(', scope="read:orders"')


def test_outside_protect_a_machine_is_only_stored_when_allowed(server: AuthgearTestServer, middleware: Client) -> None:
    answer = middleware.get("/public", headers=bearer(machine(server))).get_json()
    assert answer == {"user": None, "machine": None, "error": NEEDS_USER}
    allowing = Client(AuthgearMiddleware(echo, allow_machine=True, **server.settings(audience=[API])))
    assert allowing.get("/public", headers=bearer(machine(server))).get_json()["machine"] is True


def test_middleware_wide_scopes_apply_to_every_protected_prefix(server: AuthgearTestServer) -> None:
    app = Client(
        AuthgearMiddleware(
            echo, protect=["/api"], scopes=["read:orders"], allow_machine=True, **server.settings(audience=[API])
        )
    )
    assert app.get("/api/x", headers=bearer(machine(server))).status_code == 200
    assert app.get("/api/x", headers=bearer(machine(server, ("y",)))).status_code == 403
    assert app.get("/elsewhere", headers=bearer(machine(server, ("y",)))).get_json()["machine"] is True


# -- audiences -------------------------------------------------------------------------------------------------


def test_audience_from_a_comma_separated_string(server: AuthgearTestServer) -> None:
    settings = Settings.load(
        {"AUTHGEAR_ENDPOINT": server.endpoint, "AUTHGEAR_AUDIENCE": f"{API}, {server.endpoint}"}, environ={}
    )
    assert settings.audience == (API, server.endpoint)


@pytest.mark.parametrize(
    "audience",
    ["https://myapp.authgear.cloud/", "https://myapp.authgear.cloud/api", "https://myapp.authgear.cloud.example.com"],
)
def test_an_audience_under_the_endpoint_is_refused(audience: str) -> None:
    with pytest.raises(ConfigurationError, match="begins with the Authgear endpoint"):
        Settings(endpoint="https://myapp.authgear.cloud", audience=[audience])
    with pytest.raises(ConfigurationError, match="AUTHGEAR_AUDIENCE"):
        Settings.load({"AUTHGEAR_ENDPOINT": "https://myapp.authgear.cloud", "AUTHGEAR_AUDIENCE": audience}, environ={})
    assert Settings(endpoint="https://myapp.authgear.cloud", audience=["https://myapp.authgear.cloud", API]).audience


def test_the_wrong_audience_error_names_the_configured_ones_only(server: AuthgearTestServer) -> None:
    app = flask_api(server, "machines-aud")[0]
    marker = "https://attacker.example/zzz-marker"
    response = app.test_client().get("/me", headers=bearer(server.issue_token("alice", aud=[marker])))
    assert response.status_code == 401
    assert "zzz-marker" not in response.headers["WWW-Authenticate"] and "zzz-marker" not in response.text
    assert f"accepted audiences: {server.endpoint}, {API}." in response.headers["WWW-Authenticate"]


def test_an_async_machine_loader_is_awaited_and_a_non_callable_is_refused(server: AuthgearTestServer) -> None:
    app, auth = flask_api(server, "machines-async-loader")

    @auth.machine_loader
    async def load_machine(identity: Any) -> Any:
        return {"service": identity.client_id}

    answer = app.test_client().get("/orders", headers=bearer(machine(server)))
    assert answer.get_json()["app_user"] == {"service": "b892697a2075af58"}
    with pytest.raises(ConfigurationError):
        auth.machine_loader("not a function")  # type: ignore[arg-type]


def test_resolver_identities_carry_no_scopes_so_a_scoped_route_refuses_them(server: AuthgearTestServer) -> None:
    app = Flask("machines-resolver-scopes")
    configure(app, server, mode="resolver")
    Authgear(app)
    app.get("/scoped", endpoint="scoped")(require_auth(scopes=["openid"])(lambda: "ok"))
    app.get("/plain", endpoint="plain")(require_auth(lambda: "ok"))
    session = server.create_session("alice")
    client = app.test_client()
    assert client.get("/plain", headers={"Authorization": session.authorization}).status_code == 200
    refused = client.get("/scoped", headers={"Authorization": session.authorization})
    assert refused.status_code == 403 and refused.get_json()["scope"] == "openid"
