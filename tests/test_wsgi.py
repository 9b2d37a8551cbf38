"""AuthgearMiddleware around a plain WSGI callable: annotation, protected paths, forged headers, exact answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client

from flask_authgear import AuthgearMiddleware, ConfigurationError, Settings, Verifier
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer
from tests.support.net import free_port

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REALM = 'Bearer realm="authgear"'


def invalid(description: str) -> str:
    """The challenge of a token refused with ``description``."""
    return f'{REALM}, error="invalid_token", error_description="{description}"'


EXPIRED = f'{REALM}, error="invalid_token", error_description="The access token has expired."'
MALFORMED = f'{REALM}, error="invalid_request", error_description="The Authorization header is malformed."'
ANONYMOUS = (
    f'{REALM}, error="insufficient_scope", error_description="Anonymous users are not allowed to access this resource."'
)
FORGED = {"X-Authgear-Session-Valid": "true", "X-Authgear-User-Id": "forged", "X-Authgear-User-Roles": "admin"}


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A plain WSGI app that reports what the middleware told it."""
    user = environ["authgear.user"]
    error = environ["authgear.error"]
    body = {
        "path": environ["PATH_INFO"],
        "user": None if user is None else user.id,
        "roles": [] if user is None else sorted(user.roles),
        "error": None if error is None else [error.status_code, error.error],
        "forged": {k: environ.get("HTTP_" + k.upper().replace("-", "_")) for k in FORGED},
    }
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


@pytest.fixture(scope="module")
def middleware(server: AuthgearTestServer) -> AuthgearMiddleware:
    return AuthgearMiddleware(echo_app, protect=["/api", "/admin/"], public=["/api/health"], **server.settings())


@pytest.fixture(scope="module")
def client(middleware: AuthgearMiddleware) -> Client:
    return Client(middleware)


def check_refused(response: Any, status: int, challenge: str, body: dict[str, Any] | None = None) -> None:
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data)
    data = json.loads(response.data)
    if body is not None:
        assert data == body
    assert "user" not in data


# -- protected paths -----------------------------------------------------------------------------------------


def test_protected_without_credentials(client: Client) -> None:
    response = client.get("/api/me")
    assert response.status == "401 Unauthorized"
    check_refused(response, 401, REALM, {"error": "unauthorized", "error_description": "Authentication is required."})


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        pytest.param(lambda s: bearer(s.issue_token(expires_in=-3600)), 401, EXPIRED, id="expired"),
        pytest.param(
            lambda s: bearer(s.issue_token(header={"typ": "JWT"})),
            401,
            invalid("The token is not an access token."),
            id="id-token",
        ),
        pytest.param(
            lambda s: bearer(s.issue_token()[:-4] + "AAAA"),
            401,
            invalid("The access token signature is invalid."),
            id="bad-signature",
        ),
        pytest.param(lambda s: bearer("opaque"), 401, invalid("The access token is malformed."), id="opaque"),
        pytest.param(lambda s: {"Authorization": "Bearer"}, 400, MALFORMED, id="bare-bearer"),
        pytest.param(lambda s: bearer(s.issue_token(is_anonymous=True)), 403, ANONYMOUS, id="anonymous"),
    ],
)
def test_protected_refusals(
    client: Client, server: AuthgearTestServer, headers: Any, status: int, challenge: str
) -> None:
    check_refused(client.get("/api/me", headers=headers(server)), status, challenge)


def test_protected_with_a_valid_token(client: Client, server: AuthgearTestServer) -> None:
    response = client.get("/api/me", headers=bearer(server.issue_token("u1", roles=["admin"])))
    assert response.status_code == 200
    assert json.loads(response.data) == {
        "path": "/api/me",
        "user": "u1",
        "roles": ["admin"],
        "error": None,
        "forged": dict.fromkeys(FORGED),
    }


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/api", True),
        ("/api/", True),
        ("/api/me/deeper", True),
        ("/admin", True),
        ("/admin/x", True),
        ("/apix", False),
        ("/administrator", False),
        ("/", False),
        ("/other", False),
        ("/api/health", False),
        ("/api/health/deep", False),
        ("/api/healthy", True),
        ("/api/health/../me", True),
        ("/api/health/../../api/me", True),
        ("/public/../api/me", True),
        ("//api/me", True),
        ("/api//me", True),
        ("/./api/me", True),
        ("/x/../admin", True),
    ],
)
def test_prefix_matching(middleware: AuthgearMiddleware, path: str, protected: bool) -> None:
    assert middleware.is_protected(path) is protected
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": None}
    statuses: list[str] = []
    middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == (["401 Unauthorized"] if protected else ["200 OK"])


def test_cors_preflight_passes_protected_paths(client: Client, server: AuthgearTestServer) -> None:
    response = client.options("/api/me", headers={**bearer("garbage"), "Access-Control-Request-Method": "GET"})
    assert response.status_code == 200
    assert json.loads(response.data)["user"] is None
    assert json.loads(response.data)["error"] is None


# -- annotation only -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "user", "error"),
    [
        pytest.param(lambda s: {}, None, [401, None], id="no-credentials"),
        pytest.param(lambda s: bearer("opaque"), None, [401, "invalid_token"], id="invalid"),
        pytest.param(lambda s: {"Authorization": "Basic eDp5"}, None, [400, "invalid_request"], id="basic"),
        pytest.param(lambda s: bearer(s.issue_token("u7")), "u7", None, id="valid"),
        pytest.param(
            lambda s: bearer(s.issue_token("anon", is_anonymous=True)),
            None,
            [403, "insufficient_scope"],
            id="anonymous",
        ),
    ],
)
def test_unprotected_paths_are_annotated(
    client: Client, server: AuthgearTestServer, headers: Any, user: str | None, error: list[Any] | None
) -> None:
    response = client.get("/other", headers=headers(server))
    assert response.status_code == 200
    data = json.loads(response.data)
    assert data["user"] == user
    assert data["error"] == error


def test_annotate_only_without_protect(server: AuthgearTestServer) -> None:
    client = Client(AuthgearMiddleware(echo_app, **server.settings()))
    assert json.loads(client.get("/api/me").data)["error"] == [401, None]
    assert json.loads(client.get("/api/me", headers=bearer(server.issue_token("z"))).data)["user"] == "z"


def test_allow_anonymous(server: AuthgearTestServer) -> None:
    client = Client(AuthgearMiddleware(echo_app, protect="/", allow_anonymous=True, **server.settings()))
    response = client.get("/x", headers=bearer(server.issue_token("anon", is_anonymous=True)))
    assert response.status_code == 200
    assert json.loads(response.data)["user"] == "anon"


def test_identity_never_leaks_between_requests(client: Client, server: AuthgearTestServer) -> None:
    tokens = {f"user-{n}": server.issue_token(f"user-{n}") for n in range(5)}
    for _ in range(3):
        for sub, token in tokens.items():
            assert json.loads(client.get("/other", headers=bearer(token)).data)["user"] == sub
            assert json.loads(client.get("/other").data)["user"] is None


# -- forged headers -------------------------------------------------------------------------------------------


def test_forged_headers_never_reach_the_app(client: Client, server: AuthgearTestServer) -> None:
    for path, headers in (("/other", FORGED), ("/api/me", {**FORGED, **bearer(server.issue_token())})):
        data = json.loads(client.get(path, headers=headers).data)
        assert data["forged"] == dict.fromkeys(FORGED)
    assert client.get("/api/me", headers=FORGED).status_code == 401


def test_proxy_mode_trusts_only_the_proxy(server: AuthgearTestServer) -> None:
    wrapped = AuthgearMiddleware(echo_app, protect="/api", **server.settings(mode="proxy", trusted_proxies="10.0.0.1"))
    client = Client(wrapped)
    from_proxy = client.get("/api/me", headers=FORGED, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert from_proxy.status_code == 200
    data = json.loads(from_proxy.data)
    assert (data["user"], data["roles"], data["forged"]) == ("forged", ["admin"], FORGED)
    # The same headers from anyone else: removed, and no identity.
    direct = json.loads(client.get("/other", headers=FORGED, environ_base={"REMOTE_ADDR": "10.0.0.2"}).data)
    assert (direct["user"], direct["forged"]) == (None, dict.fromkeys(FORGED))
    check_refused(client.get("/api/me", headers=FORGED), 401, REALM)


# -- construction ---------------------------------------------------------------------------------------------


def test_settings_object_or_shared_verifier(server: AuthgearTestServer) -> None:
    settings = Settings(**server.settings(realm="shared"))
    verifier = Verifier(settings)
    by_settings = AuthgearMiddleware(echo_app, protect="/api", settings=settings)
    by_verifier = AuthgearMiddleware(echo_app, protect="/api", verifier=verifier)
    assert by_settings.settings is settings
    assert by_verifier.verifier is verifier
    for wrapped in (by_settings, by_verifier):
        response = Client(wrapped).get("/api/x")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="shared"'
        assert Client(wrapped).get("/api/x", headers=bearer(server.issue_token())).status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="no-endpoint"),
        pytest.param({"endpont": "https://x.example"}, id="typo"),
        pytest.param({"endpoint": "ftp://x.example"}, id="bad-endpoint"),
        pytest.param({"endpoint": "https://x.example", "protect": ["api"]}, id="relative-prefix"),
        pytest.param({"endpoint": "https://x.example", "public": [None]}, id="non-string-prefix"),
        pytest.param({"endpoint": "https://x.example", "settings": Settings(endpoint="https://y.example")}, id="both"),
        pytest.param(
            {"verifier": Verifier(Settings(endpoint="https://y.example")), "endpoint": "https://x.example"},
            id="verifier-and-keywords",
        ),
        pytest.param(
            {
                "verifier": Verifier(Settings(endpoint="https://y.example")),
                "settings": Settings(endpoint="https://y.example"),
            },
            id="verifier-and-settings",
        ),
    ],
)
def test_bad_construction_fails_at_start_up(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        AuthgearMiddleware(echo_app, **kwargs)


def test_provider_unreachable_is_503_on_protected_paths() -> None:
    port = free_port()  # a port with nobody listening
    wrapped = AuthgearMiddleware(echo_app, protect="/api", endpoint=f"http://127.0.0.1:{port}", http_timeout=1)
    with AuthgearTestServer() as other:
        token = other.issue_token()
    client = Client(wrapped)
    response = client.get("/api/me", headers=bearer(token))
    check_refused(
        response,
        503,
        REALM,
        {"error": "temporarily_unavailable", "error_description": "The identity provider is temporarily unavailable."},
    )
    assert response.headers["Retry-After"] == "5"
    assert json.loads(client.get("/other", headers=bearer(token)).data)["error"] == [503, "temporarily_unavailable"]


# -- a login page for browsers -------------------------------------------------------------------------------------


def test_a_browser_is_sent_to_the_login_page_and_an_api_client_gets_the_401(server: AuthgearTestServer) -> None:
    client = Client(AuthgearMiddleware(echo_app, protect=["/api"], login_url="/login", **server.settings()))
    browser = {"Accept": "text/html,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}
    response = client.get("/api/orders?page=2", headers=browser)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fapi%2Forders%3Fpage%3D2"
    assert response.headers["Cache-Control"] == "no-store"
    assert {"Accept", "Authorization", "Cookie"} <= {v.strip() for v in response.headers["Vary"].split(",")}
    assert client.post("/api/orders", headers=browser).status_code == 303
    # "//api/orders" is protected once normalised; its next stays a path of this site, not the host "api".
    double = client.get("/", headers=browser, environ_overrides={"PATH_INFO": "//api/orders"})
    assert (double.status_code, double.headers["Location"]) == (302, "/login?next=%2Fapi%2Forders")
    assert client.get("/api/orders", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/api/orders").status_code == 401
    assert client.get("/api/orders", headers={**browser, **bearer(server.issue_token("u"))}).status_code == 200
