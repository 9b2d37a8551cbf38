"""``AUTHGEAR_LOGIN_URL``: a browser asking for a protected page without valid credentials goes to the login page.

Scripts and API clients keep their 401; a 403 or 503 is never a redirect; ``next`` is always a relative path of
this site, whatever the request path, so the login page can follow it without becoming an open redirect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from flask_authgear import Authgear, ConfigurationError, Settings, current_user, require_auth, verify_request
from flask_authgear.core.login import _next_path
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer

#: What a browser sends when the user opens a page (Chrome's navigation Accept header).
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
}


def build_app(server: AuthgearTestServer, login_url: str | None = "/login") -> Flask:
    app = Flask(__name__)
    app.config.update(server.flask_config(login_url=login_url))
    auth = Authgear(app)

    @app.route("/account", methods=["GET", "POST"])
    @require_auth
    def account() -> dict[str, Any]:
        return {"user": current_user.id}

    @app.get("/admin")
    @require_auth(roles=["admin"])
    def admin() -> str:
        return "admin"

    @app.get("/inside")
    def inside() -> str:
        verify_request()
        return "inside"

    @app.get("/<path:anything>")
    @require_auth
    def anything(anything: str) -> str:
        return anything

    pages = Blueprint("pages", __name__, url_prefix="/pages")

    @pages.get("/<name>")
    def page(name: str) -> str:
        return name

    app.register_blueprint(auth.protect(pages))
    return app


@pytest.fixture
def client(server: AuthgearTestServer) -> FlaskClient:
    return build_app(server).test_client()


def next_of(location: str) -> str:
    parts = urlsplit(location)
    assert parts.path == "/login" and not parts.scheme and not parts.netloc
    (value,) = parse_qs(parts.query)["next"]
    return value


@pytest.mark.parametrize("path", ["/account", "/pages/home"], ids=["require_auth", "protect"])
def test_a_browser_without_credentials_goes_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path + "?tab=2&x=%2F", headers=BROWSER)
    assert response.status_code == 302
    assert next_of(response.headers["Location"]) == path + "?tab=2&x=%2F"
    assert response.headers["Cache-Control"] == "no-store"
    assert {"Accept", "Authorization", "Cookie"} <= set(response.vary)


def test_invalid_or_expired_credentials_go_to_the_login_page_too(
    client: FlaskClient, server: AuthgearTestServer
) -> None:
    for headers in (bearer("garbage"), bearer(server.issue_token("u", expires_in=-600))):
        response = client.get("/account", headers={**BROWSER, **headers})
        assert (response.status_code, next_of(response.headers["Location"])) == (302, "/account")


def test_a_form_post_is_sent_on_with_303(client: FlaskClient) -> None:
    response = client.post("/account", headers=BROWSER, data={"a": "b"})
    assert (response.status_code, next_of(response.headers["Location"])) == (303, "/account")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-accept"),
        pytest.param({"Accept": "*/*"}, id="anything"),
        pytest.param({"Accept": "application/json"}, id="json"),
        pytest.param({"Accept": "application/json, text/html"}, id="json-first"),
        pytest.param({"Accept": "text/html;q=0.5, application/json"}, id="json-preferred"),
        pytest.param({**BROWSER, "X-Requested-With": "XMLHttpRequest"}, id="xhr"),
        pytest.param({"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, id="fetch"),
        pytest.param({"Accept": "text/html", "Sec-Fetch-Mode": "same-origin"}, id="same-origin-fetch"),
    ],
)
def test_scripts_and_api_clients_keep_the_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/account", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "Location" not in response.headers


def test_a_403_is_never_a_redirect(client: FlaskClient, server: AuthgearTestServer) -> None:
    """Signing in again would not give the user the role."""
    response = client.get("/admin", headers={**BROWSER, **bearer(server.issue_token("u", roles=["user"]))})
    assert response.status_code == 403


def test_a_503_is_never_a_redirect(server: AuthgearTestServer) -> None:
    with AuthgearTestServer() as failing:
        client = build_app(failing).test_client()
        token = failing.issue_token("u")
        with failing.failing("jwks", "500"), failing.failing("discovery", "500"):
            assert client.get("/account", headers={**BROWSER, **bearer(token)}).status_code == 503


def test_a_signed_in_browser_gets_the_page(client: FlaskClient, server: AuthgearTestServer) -> None:
    response = client.get("/account", headers={**BROWSER, **bearer(server.issue_token("alice"))})
    assert response.get_json() == {"user": "alice"}


def test_verify_request_inside_a_view_keeps_its_error(client: FlaskClient) -> None:
    """Only the protected views' own checks redirect; a view's verify_request raises its error as documented."""
    assert client.get("/inside", headers=BROWSER).status_code == 401


def test_without_the_setting_browsers_get_the_401(server: AuthgearTestServer) -> None:
    assert build_app(server, login_url=None).test_client().get("/account", headers=BROWSER).status_code == 401


def test_an_absolute_login_url_keeps_its_own_query(server: AuthgearTestServer) -> None:
    client = build_app(server, login_url="https://id.example.com/sign-in?app=shop").test_client()
    location = client.get("/account?a=1", headers=BROWSER).headers["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "id.example.com", "/sign-in")
    assert parse_qs(parts.query) == {"app": ["shop"], "next": ["/account?a=1"]}


# -- no open redirect -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/%2F%2Fevil.example", "/evil.example", id="encoded-double-slash"),
        pytest.param("/%5Cevil.example", "/evil.example", id="encoded-backslash"),
        pytest.param("/%5C%5Cevil.example", "/evil.example", id="encoded-backslashes"),
        pytest.param("/%09/evil.example", "/%09/evil.example", id="tab-browsers-drop"),
        pytest.param("/https://evil.example", "/https://evil.example", id="scheme-in-the-path"),
        pytest.param("/caf%C3%A9?q=%22x%22", "/caf%C3%A9?q=%22x%22", id="non-ascii-and-quotes"),
    ],
)
def test_next_is_always_a_path_of_this_site(client: FlaskClient, path: str, expected: str) -> None:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == 302
    assert next_of(response.headers["Location"]) == expected


def test_a_double_slash_path_is_not_another_host(client: FlaskClient) -> None:
    """``GET //evil.example/x HTTP/1.1`` reaches the app as that PATH_INFO (a test client would read a host)."""
    response = client.get("/", headers=BROWSER, environ_overrides={"PATH_INFO": "//evil.example/x"})
    assert next_of(response.headers["Location"]) == "/evil.example/x"


@pytest.mark.parametrize(
    "path_info",
    ["//evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "///evil.example", "", "/\t/x"],
)
def test_next_from_any_wsgi_path_stays_on_this_site(path_info: str) -> None:
    value = _next_path({"PATH_INFO": path_info, "QUERY_STRING": "a=//evil.example"})
    assert value.startswith("/") and value[1:2] not in ("/", "\\")
    assert all(c.isascii() and c.isprintable() and c not in " \\\t" for c in value)
    joined = urlsplit("https://myapp.example" + value)
    assert joined.netloc == "myapp.example"


def test_the_host_header_never_chooses_the_login_page(client: FlaskClient) -> None:
    response = client.get("/account", headers={**BROWSER, "Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "value",
    ["//evil.example/login", "/\\evil.example", "javascript:alert(1)", "ftp://x.example/login", "/login#top", 3],
)
def test_a_login_url_that_could_leave_the_site_by_mistake_is_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="AUTHGEAR_LOGIN_URL"):
        Settings.load({"AUTHGEAR_ENDPOINT": "https://myapp.authgear.cloud", "AUTHGEAR_LOGIN_URL": value}, environ={})


def test_a_plain_http_login_page_needs_the_insecure_switch() -> None:
    config = {"AUTHGEAR_ENDPOINT": "https://myapp.authgear.cloud", "AUTHGEAR_LOGIN_URL": "http://app.example/login"}
    with pytest.raises(ConfigurationError, match="AUTHGEAR_LOGIN_URL uses plain http"):
        Settings.load(config, environ={})
    assert Settings.load({**config, "AUTHGEAR_ALLOW_INSECURE_HTTP": True}, environ={}).login_url
