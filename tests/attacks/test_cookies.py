"""Hostile session cookies in resolver and auto modes, through both adapters.

A cookie that cannot be forwarded safely (too large, control characters) is a 400 before Authgear is asked; a
cookie the resolver does not vouch for is a 401; neither answer echoes the cookie.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_authgear.testing.server import AuthgearTestServer, TestSession
from flask_authgear.wsgi import AuthgearMiddleware
from tests.support.apps import me_app, whoami

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def flask_target(server: AuthgearTestServer) -> WSGIApplication:
    return me_app(server, "cookie-target", mode="resolver")


def wsgi_target(server: AuthgearTestServer) -> WSGIApplication:
    return AuthgearMiddleware(whoami, protect=["/"], **server.settings(mode="auto"))


@pytest.fixture(scope="module")
def apps(server: AuthgearTestServer) -> dict[str, WSGIApplication]:
    return {"flask-resolver": flask_target(server), "wsgi-auto": wsgi_target(server)}


@pytest.fixture(scope="module")
def victim(server: AuthgearTestServer) -> TestSession:
    return server.create_session("cookie-victim")


def hostile_cookies(server: AuthgearTestServer, victim: TestSession) -> dict[str, tuple[str, int]]:
    """Cookie header values and the status each must get."""
    revoked = server.create_session("cookie-revoked")
    server.revoke(revoked)
    marker = "hostile" + secrets.token_hex(8)
    return {
        "unknown-session": (f"session={marker}", 401),
        "revoked-session": (revoked.cookie, 401),
        "bearer-token-as-cookie": (f"session={victim.token}", 401),
        "jwt-as-access-token-cookie": (f"app_access_token={server.issue_token('x')}{marker}", 401),
        "empty-session": ("session=", 401),
        "other-cookies-only": (f"theme=dark; tracking={marker}", 401),
        "oversized": (f"session={marker}{'x' * 20_000}", 400),
        "crlf": (f"session={marker}\r\nX-Authgear-User-Id: admin", 400),
        "nul": (f"session={marker}\x00", 400),
        # Bytes beyond ASCII travel unchanged (as Latin-1 text, the way WSGI delivers them); Authgear refuses them.
        "non-ascii": (f"session={marker}" + "é".encode().decode("latin-1"), 401),
        "tab": (f"session={marker}\tx", 400),
        # Whitespace the HTTP client to the resolver refuses to begin a header with: malformed, not an outage.
        "leading-nbsp": (f"\xa0session={marker}", 400),
        "leading-nel": (f"\x85session={marker}", 400),
    }


CASES = (
    "unknown-session",
    "revoked-session",
    "bearer-token-as-cookie",
    "jwt-as-access-token-cookie",
    "empty-session",
    "other-cookies-only",
    "oversized",
    "crlf",
    "nul",
    "non-ascii",
    "tab",
    "leading-nbsp",
    "leading-nel",
)


def get(app: WSGIApplication, cookie: str) -> tuple[int, dict[str, str], bytes]:
    environ = EnvironBuilder(path="/me").get_environ()
    environ["HTTP_COOKIE"] = cookie
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), dict(headers), b"".join(body)


def test_the_victims_cookie_works(apps: dict[str, WSGIApplication], victim: TestSession) -> None:
    for app in apps.values():
        status, _, body = get(app, victim.cookie)
        assert (status, json.loads(body)["sub"]) == (200, "cookie-victim")


@pytest.mark.parametrize("adapter", ["flask-resolver", "wsgi-auto"])
@pytest.mark.parametrize("case", CASES)
def test_hostile_cookies_are_refused_without_echo(
    server: AuthgearTestServer, apps: dict[str, WSGIApplication], victim: TestSession, adapter: str, case: str
) -> None:
    cookie, expected = hostile_cookies(server, victim)[case]
    before = server.hits("resolver")
    status, headers, body = get(apps[adapter], cookie)
    assert status == expected
    assert json.loads(body)["error"] == ("invalid_request" if expected == 400 else "invalid_token")
    if expected == 400:
        assert server.hits("resolver") == before  # refused before anything was forwarded
    text = body.decode() + " ".join(headers.values())
    for part in cookie.replace(";", "=").split("="):
        if len(part.strip()) >= 12:
            assert part.strip()[:40] not in text
