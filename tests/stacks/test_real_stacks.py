"""The adapters inside the WSGI stacks real deployments build, served over loopback sockets: behind werkzeug's
ProxyFix (in either order), Flask apps mounted in one another with DispatcherMiddleware, non-ASCII protected
paths, and Cookie bytes the HTTP client to the resolver refuses to send."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_authgear import Authgear, AuthgearMiddleware, ConfigurationError, Verifier, current_user, require_auth
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.testing.client import configure
from tests.support.app_server import AppServer, get, send_raw
from tests.support.auth import bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PROXY = "127.0.0.1"  # the trusted reverse proxy: the direct peer of the requests it forwards
CLIENT = "127.0.0.2"  # a client that reaches the app without the proxy
IDENTITY = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "u-42",
    "X-Authgear-User-Anonymous": "false",
    "X-Authgear-User-Verified": "true",
    "X-Authgear-User-Can-Reauthenticate": "false",
    "X-Authgear-Session-Amr": "pwd",
}


def flask_app(name: str) -> Flask:
    """``/me`` needs a user and answers its id; ``/headers`` is open and says which identity header it sees."""
    app = Flask(name)

    @app.get("/me")
    @require_auth
    def me() -> Any:
        return jsonify(sub=current_user.id)

    @app.get("/headers")
    def headers() -> Any:
        return jsonify(user_id=request.headers.get("X-Authgear-User-Id"))

    return app


def bare_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Behind the middleware: the user it was given and the identity header it sees."""
    user = environ["authgear.user"]
    body = {"sub": user.id if user else None, "user_id": environ.get("HTTP_X_AUTHGEAR_USER_ID")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


# -- behind ProxyFix ------------------------------------------------------------------------------------------


def proxy_settings(server: AuthgearTestServer) -> dict[str, Any]:
    return server.settings(mode="proxy", trusted_proxies=PROXY)


def flask_fix_then_authgear(server: AuthgearTestServer) -> tuple[WSGIApplication, str, str]:
    app = flask_app("fix-then-authgear")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    configure(app, server, **proxy_settings(server))
    Authgear(app)
    return app, "/me", "/headers"


def flask_authgear_then_fix(server: AuthgearTestServer) -> tuple[WSGIApplication, str, str]:
    app = flask_app("authgear-then-fix")
    configure(app, server, **proxy_settings(server))
    Authgear(app)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    return app, "/me", "/headers"


def middleware_around_fix(server: AuthgearTestServer) -> tuple[WSGIApplication, str, str]:
    app = AuthgearMiddleware(ProxyFix(bare_app, x_for=1), protect=["/api"], **proxy_settings(server))
    return app, "/api/me", "/headers"


def fix_around_middleware(server: AuthgearTestServer) -> tuple[WSGIApplication, str, str]:
    app = ProxyFix(AuthgearMiddleware(bare_app, protect=["/api"], **proxy_settings(server)), x_for=1)
    return app, "/api/me", "/headers"


STACKS = [
    pytest.param(flask_fix_then_authgear, id="flask-proxyfix-then-authgear"),
    pytest.param(flask_authgear_then_fix, id="flask-authgear-then-proxyfix"),
    pytest.param(middleware_around_fix, id="middleware-around-proxyfix"),
    pytest.param(fix_around_middleware, id="proxyfix-around-middleware"),
]
Stack = Callable[[AuthgearTestServer], tuple["WSGIApplication", str, str]]


@pytest.mark.parametrize("stack", STACKS)
def test_behind_proxyfix_the_trusted_proxy_is_believed(server: AuthgearTestServer, stack: Stack) -> None:
    app, protected, _ = stack(server)
    with AppServer(app) as running:
        status, _, body = get(running.port, protected, {**IDENTITY, "X-Forwarded-For": "203.0.113.9"}, source=PROXY)
    assert (status, body["sub"]) == (200, "u-42")


@pytest.mark.parametrize("stack", STACKS)
def test_behind_proxyfix_a_forwarded_for_naming_the_proxy_gains_nothing(
    server: AuthgearTestServer, stack: Stack
) -> None:
    app, protected, open_path = stack(server)
    forged = {**IDENTITY, "X-Forwarded-For": PROXY}
    with AppServer(app) as running:
        status, headers, _ = get(running.port, protected, forged, source=CLIENT)
        assert status == 401
        assert headers["www-authenticate"] == 'Bearer realm="authgear"'
        status, _, body = get(running.port, open_path, forged, source=CLIENT)
    assert (status, body["user_id"]) == (200, None)


# -- mounted Flask apps -----------------------------------------------------------------------------------------

AUDIENCE_A = "https://a.example"
AUDIENCE_B = "https://b.example"


def mount(a: Flask, b: Flask) -> None:
    a.wsgi_app = DispatcherMiddleware(a.wsgi_app, {"/b": b.wsgi_app})  # type: ignore[method-assign]


def init(app: Flask) -> None:
    Authgear(app)


ORDERS: dict[str, Callable[[Flask, Flask], None]] = {
    "mount-then-a-then-b": lambda a, b: (mount(a, b), init(a), init(b)),
    "mount-then-b-then-a": lambda a, b: (mount(a, b), init(b), init(a)),
    "a-then-mount-then-b": lambda a, b: (init(a), mount(a, b), init(b)),
    "b-then-mount-then-a": lambda a, b: (init(b), mount(a, b), init(a)),
    "a-then-b-then-mount": lambda a, b: (init(a), init(b), mount(a, b)),
}


@pytest.mark.parametrize("order", ORDERS)
def test_mounted_apps_verify_with_their_own_settings(server: AuthgearTestServer, order: str) -> None:
    a, b = flask_app("outer-a"), flask_app("mounted-b")
    configure(a, server, audience=AUDIENCE_A)
    configure(b, server, audience=AUDIENCE_B)
    ORDERS[order](a, b)
    for_a = bearer(server.issue_token("alice", aud=[AUDIENCE_A]))
    for_b = bearer(server.issue_token("bob", aud=[AUDIENCE_B]))
    with AppServer(a) as running:
        answers = {
            "a-token-on-a": get(running.port, "/me", for_a)[::2],
            "b-token-on-a": get(running.port, "/me", for_b)[0],
            "b-token-on-b": get(running.port, "/b/me", for_b)[::2],
            "a-token-on-b": get(running.port, "/b/me", for_a)[0],
        }
    assert answers == {
        "a-token-on-a": (200, {"sub": "alice"}),
        "b-token-on-a": 401,
        "b-token-on-b": (200, {"sub": "bob"}),
        "a-token-on-b": 401,
    }


@pytest.mark.parametrize("outer_has_authgear", [False, True], ids=["plain-outer", "authgear-outer"])
def test_a_mounted_apps_authenticated_answers_vary_on_credentials(
    server: AuthgearTestServer, outer_has_authgear: bool
) -> None:
    """The dispatcher captured the mounted app's bare wsgi_app, so its wrapper never runs: its answers must
    still say they depend on the credentials, or a shared cache could hand one user's page to another."""
    a, b = flask_app("outer"), flask_app("mounted")
    configure(a, server)
    configure(b, server)
    mount(a, b)
    if outer_has_authgear:
        init(a)
    init(b)
    with AppServer(a) as running:
        status, headers, body = get(running.port, "/b/me", bearer(server.issue_token("bob")))
    assert (status, body) == (200, {"sub": "bob"})
    assert sorted(token.strip() for token in headers["vary"].split(",")) == ["Authorization", "Cookie"]


def test_a_mounted_app_removes_headers_its_outer_app_trusts(server: AuthgearTestServer) -> None:
    """The outer app believes its proxy; the mounted one (not in proxy mode, initialised after the dispatcher
    captured its wsgi_app) must still remove the identity headers before its views run."""
    a, b = flask_app("proxy-outer"), flask_app("jwt-inner")
    configure(a, server, **proxy_settings(server))
    configure(b, server)
    mount(a, b)
    init(a)
    init(b)
    with AppServer(a) as running:
        outer = get(running.port, "/headers", IDENTITY, source=PROXY)
        inner = get(running.port, "/b/headers", IDENTITY, source=PROXY)
    assert (outer[0], outer[2]) == (200, {"user_id": "u-42"})
    assert (inner[0], inner[2]) == (200, {"user_id": None})


# -- middleware paths ----------------------------------------------------------------------------------------


def raw_get(port: int, request_line_and_headers: bytes) -> int:
    """Send bytes as they are (an HTTP client would refuse or re-encode them) and return the status code."""
    answer = send_raw(port, request_line_and_headers + b"Host: app.test\r\nConnection: close\r\n\r\n")
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("stdlib", [True, False], ids=["wsgiref", "werkzeug"])
@pytest.mark.parametrize(
    ("target", "status"),
    [
        pytest.param(b"/caf%C3%A9/secret", 401, id="percent-encoded"),
        pytest.param(b"/caf%c3%a9", 401, id="percent-encoded-lowercase-prefix-itself"),
        pytest.param(b"/x/../caf%C3%A9/secret", 401, id="dot-segments"),
        pytest.param(b"/cafe/secret", 200, id="other-path"),
    ],
)
def test_a_non_ascii_prefix_protects_its_paths(
    server: AuthgearTestServer, stdlib: bool, target: bytes, status: int
) -> None:
    app = AuthgearMiddleware(bare_app, protect=["/café"], **server.settings())
    with AppServer(app, stdlib=stdlib) as running:
        assert raw_get(running.port, b"GET " + target + b" HTTP/1.1\r\n") == status


def test_a_non_ascii_prefix_protects_raw_utf8_paths(server: AuthgearTestServer) -> None:
    app = AuthgearMiddleware(bare_app, protect=["/café"], **server.settings())
    # The standard library's server hands the raw bytes over as PEP 3333 says (Latin-1 text).
    with AppServer(app, stdlib=True) as running:
        assert raw_get(running.port, b"GET /caf\xc3\xa9/secret HTTP/1.1\r\n") == 401
        assert raw_get(running.port, b"GET /caf\xc3\xa9t/secret HTTP/1.1\r\n") == 200  # another segment


@pytest.mark.parametrize("prefix", ["/api/*", "/api*", "/api/?", "/api/[ab]", "/api]"])
def test_a_prefix_that_looks_like_a_pattern_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="literal"):
        AuthgearMiddleware(bare_app, protect=["/ok", prefix], endpoint="https://x.example")
    with pytest.raises(ConfigurationError, match="literal"):
        AuthgearMiddleware(bare_app, public=prefix, endpoint="https://x.example")


# -- cookies the HTTP client will not send -----------------------------------------------------------------------


def resolver_flask(server: AuthgearTestServer) -> tuple[WSGIApplication, Verifier]:
    app = flask_app("cookie-resolver")
    configure(app, server, mode="resolver")
    ext = Authgear(app)
    with app.app_context():
        return app, ext.verifier


def auto_middleware(server: AuthgearTestServer) -> tuple[WSGIApplication, Verifier]:
    app = AuthgearMiddleware(bare_app, protect=["/"], **server.settings(mode="auto"))
    return app, app.verifier


@pytest.mark.parametrize("build", [resolver_flask, auto_middleware], ids=["flask-resolver", "wsgi-auto"])
@pytest.mark.parametrize("cookie", [b"\xa0session=x", b"\x85session=x"], ids=["nbsp", "nel"])
def test_an_unsendable_cookie_is_a_bad_request_not_an_outage(
    server: AuthgearTestServer, build: Callable[[AuthgearTestServer], tuple[WSGIApplication, Verifier]], cookie: bytes
) -> None:
    app, verifier = build(server)
    with AppServer(app) as running:
        status = raw_get(running.port, b"GET /me HTTP/1.1\r\nCookie: " + cookie + b"\r\n")
    assert status == 400
    health = verifier.health()
    assert health["resolver"]["failures"] == 0
    assert health["last_error"] is None
