"""End to end through a real NGINX running examples/nginx/nginx.conf in front of the example app in proxy mode.

NGINX asks the local Authgear-compatible server's resolver about every request (auth_request) and passes the
answer as X-Authgear-* headers; the app trusts them only from NGINX's address (127.0.0.1). A client reaching
the app directly connects from 127.0.0.2, an address the app does not trust.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_authgear.testing.server import AuthgearTestServer
from tests.support.app_server import AppServer, get
from tests.support.auth import bearer
from tests.support.echo import echo_authgear_headers
from tests.support.examples import load_example
from tests.support.nginx_server import NginxServer, start_nginx
from tests.support.recorder import ScriptedResolver, valid

flask_api = load_example("flask_api")

FORGED = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "forged-admin",
    "X-Authgear-User-Roles": "admin",
    "X-Authgear-User-Verified": "true",
    "X-Authgear-Session-Amr": "pwd mfa",
}
SIGNATURE = "X-Authgear-Body-Signature"


@dataclass
class Stack:
    authgear: AuthgearTestServer
    app: AppServer
    nginx: NginxServer


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with AuthgearTestServer() as authgear:
        config = authgear.flask_config(mode="proxy", trusted_proxies="127.0.0.1")
        with AppServer(flask_api.create_app(config)) as app:
            nginx = start_nginx(
                app_port=app.port, authgear_host=authgear.host_header, authgear_origin=authgear.endpoint
            )
            try:
                yield Stack(authgear, app, nginx)
            finally:
                nginx.close()


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> Iterator[None]:
    stack.authgear.heal()
    stack.authgear.reset_hits()
    yield
    stack.authgear.heal()


def via_nginx(stack: Stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
    return get(stack.nginx.port, path, headers)


def test_a_bearer_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("nina", roles=["admin", "ops"], amr=["pwd", "otp"])
    status, _, body = via_nginx(stack, "/me", bearer(session.token))
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
        }
    }
    assert stack.authgear.hits("resolver") == 1
    assert via_nginx(stack, "/admin", bearer(session.token))[0] == 200


def test_a_cookie_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("otto")
    status, _, body = via_nginx(stack, "/me", {"Cookie": f"theme=dark; {session.cookie}"})
    assert status == 200
    assert body["user"]["id"] == "otto"  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-session"), {"Cookie": "session=ended"}],
    ids=["no-credentials", "unknown-token", "unknown-cookie"],
)
def test_without_a_valid_session_the_app_answers_401(stack: Stack, headers: dict[str, str]) -> None:
    status, answer_headers, _ = via_nginx(stack, "/me", headers)
    assert status == 401
    assert answer_headers["www-authenticate"].startswith('Bearer realm="authgear"')


def test_forged_identity_headers_without_credentials_are_overwritten(stack: Stack) -> None:
    for path in ("/me", "/admin"):
        status, _, body = via_nginx(stack, path, FORGED)
        assert status == 401
        assert "forged-admin" not in str(body)


def test_forged_roles_on_a_real_session_are_overwritten(stack: Stack) -> None:
    session = stack.authgear.create_session("pia", roles=["reader"])
    headers = {"Authorization": session.authorization, **FORGED}
    status, _, body = via_nginx(stack, "/me", headers)
    assert status == 200
    assert body["user"]["id"] == "pia"  # type: ignore[index]
    assert body["user"]["roles"] == ["reader"]  # type: ignore[index]
    assert body["user"]["amr"] == ["pwd"]  # type: ignore[index]
    assert via_nginx(stack, "/admin", headers)[0] == 403


def test_forged_roles_are_removed_when_the_resolver_sends_none(stack: Stack) -> None:
    session = stack.authgear.create_session("quinn", roles=[])  # Authgear then sends no roles header at all
    headers = {"Authorization": session.authorization, "X-Authgear-User-Roles": "admin"}
    status, _, body = via_nginx(stack, "/me", headers)
    assert (status, body["user"]["roles"]) == (200, [])  # type: ignore[index]
    assert via_nginx(stack, "/admin", headers)[0] == 403


def test_underscore_spellings_of_the_headers_are_dropped(stack: Stack) -> None:
    session = stack.authgear.create_session("rosa", roles=["reader"])
    headers = {"Authorization": session.authorization, "X_Authgear_User_Roles": "admin", "X_Authgear_User_Id": "x"}
    status, _, body = via_nginx(stack, "/me", headers)
    assert status == 200
    assert (body["user"]["id"], body["user"]["roles"]) == ("rosa", ["reader"])  # type: ignore[index]


def test_direct_access_bypassing_nginx_is_not_trusted(stack: Stack) -> None:
    session = stack.authgear.create_session("sven", roles=["admin"])
    for headers in (FORGED, {**FORGED, "Authorization": session.authorization}):
        status, _, body = get(stack.app.port, "/me", headers, source="127.0.0.2")
        assert status == 401
        assert "forged-admin" not in str(body)
        assert get(stack.app.port, "/admin", headers, source="127.0.0.2")[0] == 401
    # The same request from NGINX's address is believed: the address is what makes the difference.
    assert get(stack.app.port, "/me", FORGED, source="127.0.0.1")[0] == 200


@pytest.mark.parametrize("mode", ["500", "redirect", "unreachable"])
def test_a_failing_resolver_is_503_not_500(stack: Stack, mode: str) -> None:
    session = stack.authgear.create_session("tara")
    if mode == "unreachable":
        with stack.authgear.unreachable():
            status, headers, body = via_nginx(stack, "/me", bearer(session.token))
    else:
        stack.authgear.fail("resolver", mode)
        status, headers, body = via_nginx(stack, "/me", bearer(session.token))
    assert status == 503
    assert headers["www-authenticate"] == 'Bearer realm="authgear"'
    assert headers["cache-control"] == "no-store"
    assert body["error"] == "temporarily_unavailable"  # type: ignore[index]


def test_the_resolver_gets_only_the_credentials_and_the_authgear_host(stack: Stack) -> None:
    with ScriptedResolver(script=lambda request: valid("uma")) as resolver:
        origin = resolver.url.rsplit("/_resolver/resolve", 1)[0]
        nginx = start_nginx(app_port=stack.app.port, authgear_host="myapp.authgear.example", authgear_origin=origin)
        try:
            headers = {
                "Authorization": "Bearer opaque",
                "Cookie": "session=abc",
                "X-Forwarded-Host": "other-project.authgear.cloud",
                "X-Forwarded-For": "198.51.100.1",
                "Origin": "https://evil.example",
                "Content-Type": "application/json",
            }
            get(nginx.port, "/public", headers)
        finally:
            nginx.close()
        (received,) = resolver.received
    assert received.method == "GET"
    assert received.body == b""
    assert received.headers["host"] == "myapp.authgear.example"
    assert received.headers["authorization"] == "Bearer opaque"
    assert received.headers["cookie"] == "session=abc"
    assert set(received.headers) <= {"host", "authorization", "cookie", "connection"}


def test_only_identity_headers_are_replaced_and_the_webhook_signature_passes(stack: Stack) -> None:
    """The example overwrites the identity headers by name: Authgear's webhook signature must reach the app."""
    session = stack.authgear.create_session("vera")
    headers = {"Authorization": session.authorization, "X-Authgear-User-Roles": "admin", SIGNATURE: "ab" * 32}
    with AppServer(echo_authgear_headers) as app:
        nginx = start_nginx(
            app_port=app.port, authgear_host=stack.authgear.host_header, authgear_origin=stack.authgear.endpoint
        )
        try:
            _, _, seen = get(nginx.port, "/", headers)
        finally:
            nginx.close()
    assert seen["x-authgear-body-signature"] == "ab" * 32  # type: ignore[index]
    assert seen["x-authgear-user-id"] == "vera"  # type: ignore[index]
    assert "x-authgear-user-roles" not in seen  # type: ignore[operator]
