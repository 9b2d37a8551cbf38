"""@require_auth on a Flask app, over real HTTP to the local Authgear server: every outcome, exact answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from joserfc import jwt

from flask_authgear import (
    Authgear,
    ConfigurationError,
    Requirements,
    current_user,
    get_current_user,
    require_auth,
    verify_request,
)
from flask_authgear.testing import AuthgearTestServer, new_signing_key
from tests.support.auth import bearer
from tests.support.jwt import b64url, unb64url
from tests.support.net import free_port

REALM = 'Bearer realm="authgear"'


def invalid(description: str) -> str:
    """The challenge of a token refused with ``description``."""
    return f'{REALM}, error="invalid_token", error_description="{description}"'


SIGNATURE = invalid("The access token signature is invalid.")
MALFORMED_TOKEN = invalid("The access token is malformed.")
EXPIRED = f'{REALM}, error="invalid_token", error_description="The access token has expired."'
MALFORMED = f'{REALM}, error="invalid_request", error_description="The Authorization header is malformed."'
NOT_BEARER = f'{REALM}, error="invalid_request", error_description="Only the Bearer authorization scheme is supported."'
TOO_LARGE = f'{REALM}, error="invalid_request", error_description="The Authorization header is too large."'
NO_ROLE = f'{REALM}, error="insufficient_scope", error_description="The user does not have a required role."'
NOT_VERIFIED = f'{REALM}, error="insufficient_scope", error_description="A verified account is required."'
ANONYMOUS = (
    f'{REALM}, error="insufficient_scope", error_description="Anonymous users are not allowed to access this resource."'
)
STALE = (
    f'{REALM}, error="insufficient_user_authentication", '
    'error_description="A more recent authentication is required.", max_age="300"'
)

MISSING_BODY = {"error": "unauthorized", "error_description": "Authentication is required."}
INVALID_BODY = {"error": "invalid_token", "error_description": "The access token is invalid."}


def user_json() -> dict[str, Any]:
    user = get_current_user()
    if user is None:
        return {"user": None, "truthy": bool(current_user)}
    return {
        "user": user.id,
        "roles": sorted(user.roles),
        "proxy_is_user": current_user == user,
        "truthy": bool(current_user),
    }


#: Routes that answer the user as JSON, each under one ``require_auth`` option.
ROUTE_OPTIONS: dict[str, dict[str, Any]] = {
    "/optional": {"optional": True},
    "/any-role": {"roles": ["admin", "editor"]},
    "/one-role": {"roles": "admin"},
    "/all-roles": {"all_roles": ["admin", "editor"]},
    "/verified": {"verified": True},
    "/anonymous-ok": {"allow_anonymous": True},
    "/fresh": {"max_auth_age": 300},
}


def build_app(server: AuthgearTestServer, **overrides: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config(**overrides))
    Authgear(app)

    @app.route("/me", methods=["GET", "POST", "OPTIONS"])
    @require_auth
    def me() -> dict[str, Any]:
        return user_json()

    for path, options in ROUTE_OPTIONS.items():
        app.add_url_rule(path, path, require_auth(**options)(user_json))

    @app.get("/async")
    @require_auth(roles=["admin"])
    async def async_view() -> dict[str, Any]:
        return user_json()

    @app.get("/users/<int:number>")
    @require_auth
    def with_args(number: int) -> dict[str, Any]:
        return {"number": number, **user_json()}

    return app


@pytest.fixture(scope="module")
def client(server: AuthgearTestServer) -> FlaskClient:
    return build_app(server).test_client()


def b64json(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data).encode())


def edited_payload(token: str, **changes: Any) -> str:
    """The token with its payload edited and the original signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(unb64url(payload))
    claims.update(changes)
    return f"{head}.{b64json(claims)}.{signature}"


Headers = Callable[[AuthgearTestServer], dict[str, str]]

# (id, path, headers for the request, status, WWW-Authenticate or None, body)
REFUSED: list[tuple[str, str, Headers, int, str, dict[str, Any]]] = [
    ("no-credentials", "/me", lambda s: {}, 401, REALM, MISSING_BODY),
    ("empty-authorization", "/me", lambda s: {"Authorization": ""}, 401, REALM, MISSING_BODY),
    (
        "expired",
        "/me",
        lambda s: bearer(s.issue_token(expires_in=-3600)),
        401,
        EXPIRED,
        {"error": "invalid_token", "error_description": "The access token has expired."},
    ),
    ("tampered-payload", "/me", lambda s: bearer(edited_payload(s.issue_token(), sub="admin")), 401, SIGNATURE, {}),
    (
        "wrong-issuer",
        "/me",
        lambda s: bearer(s.issue_token(iss="https://evil.example")),
        401,
        invalid("The access token is from another issuer."),
        {},
    ),
    (
        "id-token-typ",
        "/me",
        lambda s: bearer(s.issue_token(header={"typ": "JWT"})),
        401,
        invalid("The token is not an access token."),
        {},
    ),
    (
        "foreign-key",
        "/me",
        lambda s: bearer(s.issue_token(key=new_signing_key())),
        401,
        invalid("The access token is signed by a key this application does not know."),
        {},
    ),
    (
        "alg-none",
        "/me",
        lambda s: bearer(f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(s.claims_for())}."),
        401,
        MALFORMED_TOKEN,
        {},
    ),
    ("two-segments", "/me", lambda s: bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0"), 401, MALFORMED_TOKEN, {}),
    ("opaque-token", "/me", lambda s: bearer("not-a-jwt"), 401, MALFORMED_TOKEN, {}),
    (
        "basic-scheme",
        "/me",
        lambda s: {"Authorization": "Basic dXNlcjpwYXNz"},
        400,
        NOT_BEARER,
        {"error": "invalid_request", "error_description": "Only the Bearer authorization scheme is supported."},
    ),
    (
        "bare-bearer",
        "/me",
        lambda s: {"Authorization": "Bearer"},
        400,
        MALFORMED,
        {"error": "invalid_request", "error_description": "The Authorization header is malformed."},
    ),
    ("extra-words", "/me", lambda s: {"Authorization": "Bearer a b"}, 400, MALFORMED, {}),
    ("oversized", "/me", lambda s: bearer("a" * 9000), 400, TOO_LARGE, {}),
    # Optional routes refuse broken credentials: they never become "no user".
    ("optional-invalid", "/optional", lambda s: bearer(s.issue_token(expires_in=-3600)), 401, EXPIRED, {}),
    ("optional-tampered", "/optional", lambda s: bearer(edited_payload(s.issue_token(), sub="x")), 401, SIGNATURE, {}),
    ("optional-malformed", "/optional", lambda s: {"Authorization": "Bearer"}, 400, MALFORMED, {}),
    (
        "any-role-none",
        "/any-role",
        lambda s: bearer(s.issue_token(roles=["viewer"])),
        403,
        NO_ROLE,
        {"error": "insufficient_scope", "error_description": "The user does not have a required role."},
    ),
    ("any-role-empty", "/any-role", lambda s: bearer(s.issue_token(roles=[])), 403, NO_ROLE, {}),
    ("any-role-case", "/any-role", lambda s: bearer(s.issue_token(roles=["Admin"])), 403, NO_ROLE, {}),
    (
        "one-role-letters",
        "/one-role",
        lambda s: bearer(s.issue_token(roles=["a", "d", "m", "i", "n"])),
        403,
        NO_ROLE,
        {},
    ),
    ("all-roles-one-missing", "/all-roles", lambda s: bearer(s.issue_token(roles=["admin"])), 403, NO_ROLE, {}),
    (
        "not-verified",
        "/verified",
        lambda s: bearer(s.issue_token(is_verified=False)),
        403,
        NOT_VERIFIED,
        {"error": "insufficient_scope", "error_description": "A verified account is required."},
    ),
    (
        "anonymous",
        "/me",
        lambda s: bearer(s.issue_token(is_anonymous=True)),
        403,
        ANONYMOUS,
        {
            "error": "insufficient_scope",
            "error_description": "Anonymous users are not allowed to access this resource.",
        },
    ),
    ("anonymous-optional", "/optional", lambda s: bearer(s.issue_token(is_anonymous=True)), 403, ANONYMOUS, {}),
    (
        "stale-authentication",
        "/fresh",
        lambda s: bearer(s.issue_token(auth_time=time.time() - 3600)),
        401,
        STALE,
        {
            "error": "insufficient_user_authentication",
            "error_description": "A more recent authentication is required.",
            "max_age": "300",
        },
    ),
    ("async-no-credentials", "/async", lambda s: {}, 401, REALM, MISSING_BODY),
    ("async-no-role", "/async", lambda s: bearer(s.issue_token(roles=["viewer"])), 403, NO_ROLE, {}),
]


@pytest.mark.parametrize(
    ("path", "headers", "status", "challenge", "body"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
def test_refused(
    client: FlaskClient,
    server: AuthgearTestServer,
    path: str,
    headers: Headers,
    status: int,
    challenge: str,
    body: dict[str, Any],
) -> None:
    response = client.get(path, headers=headers(server))
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert set(data) >= {"error", "error_description"}
    if body:
        assert data == body
    if not challenge.endswith(REALM):  # an error code is present: the body carries the same code
        assert f'error="{data["error"]}"' in challenge
    assert "user" not in data


def test_token_without_auth_time_is_refused_on_fresh_route(client: FlaskClient, server: AuthgearTestServer) -> None:
    claims = server.claims_for("user-1")
    del claims["auth_time"]
    head = {"alg": "RS256", "typ": "at+jwt", "kid": server.signing_key.kid}
    token = jwt.encode(head, claims, server.signing_key, algorithms=["RS256"])
    response = client.get("/fresh", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == STALE


ALLOWED: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("valid", "/me", {"roles": ["viewer"]}, {"user": "user-1", "roles": ["viewer"]}),
    ("any-role-first", "/any-role", {"roles": ["admin"]}, {"user": "user-1", "roles": ["admin"]}),
    ("any-role-second", "/any-role", {"roles": ["editor", "x"]}, {"user": "user-1", "roles": ["editor", "x"]}),
    ("one-role", "/one-role", {"roles": ["admin"]}, {"user": "user-1", "roles": ["admin"]}),
    (
        "all-roles",
        "/all-roles",
        {"roles": ["editor", "admin", "x"]},
        {"user": "user-1", "roles": ["admin", "editor", "x"]},
    ),
    ("verified", "/verified", {"is_verified": True}, {"user": "user-1"}),
    ("anonymous-allowed", "/anonymous-ok", {"is_anonymous": True}, {"user": "user-1"}),
    ("fresh", "/fresh", {"seconds_since_auth": 60}, {"user": "user-1"}),
    ("optional-with-user", "/optional", {}, {"user": "user-1"}),
    ("async", "/async", {"roles": ["admin"]}, {"user": "user-1", "roles": ["admin"]}),
]


@pytest.mark.parametrize(("path", "token_args", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ALLOWED])
def test_allowed(
    client: FlaskClient,
    server: AuthgearTestServer,
    path: str,
    token_args: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    token_args = dict(token_args)
    if "seconds_since_auth" in token_args:  # relative to now, not to when the module was collected
        token_args["auth_time"] = time.time() - token_args.pop("seconds_since_auth")
    response = client.get(path, headers=bearer(server.issue_token("user-1", **token_args)))
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    for key, value in expected.items():
        assert data[key] == value
    assert data["proxy_is_user"] is True
    assert data["truthy"] is True
    assert "WWW-Authenticate" not in response.headers


def test_optional_without_credentials_runs_the_view_with_no_user(client: FlaskClient) -> None:
    response = client.get("/optional")
    assert response.status_code == 200
    assert response.get_json() == {"user": None, "truthy": False}


def test_authenticated_answers_vary_on_credentials(client: FlaskClient, server: AuthgearTestServer) -> None:
    for path, headers in (("/me", bearer(server.issue_token())), ("/optional", {})):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert set(response.vary) >= {"Authorization", "Cookie"}


def test_view_arguments_pass_through(client: FlaskClient, server: AuthgearTestServer) -> None:
    response = client.get("/users/42", headers=bearer(server.issue_token("user-9")))
    assert response.status_code == 200
    assert response.get_json()["number"] == 42
    assert response.get_json()["user"] == "user-9"


def test_options_preflight_passes_without_credentials(client: FlaskClient) -> None:
    response = client.options("/me", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 200
    assert response.get_json() == {"user": None, "truthy": False}


def test_options_that_is_not_a_preflight_is_authenticated(client: FlaskClient) -> None:
    response = client.options("/me", headers=bearer("garbage"))
    assert response.status_code == 401


def test_post_needs_credentials(client: FlaskClient) -> None:
    response = client.post("/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM


def test_identity_never_leaks_between_requests(client: FlaskClient, server: AuthgearTestServer) -> None:
    tokens = {f"user-{n}": server.issue_token(f"user-{n}") for n in range(5)}
    for _ in range(3):
        for sub, token in tokens.items():
            assert client.get("/me", headers=bearer(token)).get_json()["user"] == sub
            assert client.get("/optional").get_json()["user"] is None


def test_provider_unreachable_is_503() -> None:
    port = free_port()  # a port with nobody listening
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=f"http://127.0.0.1:{port}", AUTHGEAR_HTTP_TIMEOUT=1)
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me() -> str:
        return "never"

    with AuthgearTestServer() as other:
        response = app.test_client().get("/me", headers=bearer(other.issue_token()))
    assert response.status_code == 503
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "The identity provider is temporarily unavailable.",
    }


def test_jwks_failure_without_keys_is_503(server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as failing:
        app = build_app(failing)
        failing.fail("jwks", "500")
        response = app.test_client().get("/me", headers=bearer(failing.issue_token()))
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_no_response_echoes_the_token(client: FlaskClient) -> None:
    for token, status in (("eyJ" + "A" * 40 + ".eyJ" + "B" * 40 + ".zq<marker>", 400), ("zqmarker.e30.e30", 401)):
        response = client.get("/me", headers=bearer(token))
        assert response.status_code == status
        assert b"zq" not in response.data
        assert "zq" not in response.headers["WWW-Authenticate"]


def test_one_set_of_requirements_serves_every_door(server: AuthgearTestServer) -> None:
    """``requirements=`` is taken by the decorator, verify_request and protect alike; options beside it replace
    its own fields, validated again."""
    editors = Requirements(roles=["editor"])
    app = Flask(__name__)
    app.config.update(server.flask_config())
    auth = Authgear(app)
    app.add_url_rule("/decorated", "decorated", require_auth(requirements=editors)(user_json))
    app.add_url_rule("/or-admin", "or-admin", require_auth(requirements=editors, roles="admin")(user_json))

    @app.get("/checked")
    def checked() -> dict[str, Any]:
        verify_request(requirements=editors)
        return user_json()

    blueprint = auth.protect(Blueprint("bp", __name__, url_prefix="/bp"), requirements=editors)
    blueprint.get("/x")(user_json)
    app.register_blueprint(blueprint)
    client = app.test_client()
    editor, admin = (bearer(server.issue_token("u", roles=[role])) for role in ("editor", "admin"))
    for path in ("/decorated", "/checked", "/bp/x"):
        assert client.get(path, headers=editor).status_code == 200, path
        assert client.get(path, headers=admin).headers["WWW-Authenticate"] == NO_ROLE, path
    assert client.get("/or-admin", headers=admin).status_code == 200
    assert client.get("/or-admin", headers=editor).status_code == 403
    assert editors.with_options() is editors
    assert editors.with_options(roles=("editor",)) == editors
    with pytest.raises(ConfigurationError):
        require_auth(requirements=editors, allow_machine=True)  # roles on a machine route could never pass
    with pytest.raises(TypeError):
        Requirements(rolez=["admin"])  # type: ignore[call-arg]
