"""The attack catalogue against the Flask extension, the WSGI middleware and the two example apps.

Requests are built as raw WSGI environs, so header values a test client would refuse to send (newlines, NUL,
latin-1 text) reach the adapters exactly as a lenient front server could hand them over; every attack an HTTP
client can put on the wire is also sent over a real loopback socket to the Flask app. Each answer must be the
catalogue's 400 or 401, never a 200 or a 500, and must not echo the attacker's input.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_authgear.flask import Authgear, current_user, require_auth
from flask_authgear.wsgi import ENVIRON_ERROR, ENVIRON_USER, AuthgearMiddleware
from tests.support.app_server import AppServer
from tests.support.attacks import ALGORITHMS, Attack, AttackKit, shared_catalogue, shared_kit
from tests.support.examples import load_example

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CATALOGUE = shared_catalogue()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def call(app: WSGIApplication, path: str, authorization: str | None, method: str = "GET") -> Answer:
    environ = EnvironBuilder(path=path, method=method, base_url="http://app.test").get_environ()
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    try:
        body = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return Answer(int(status.split()[0]), list(headers.items()), body)


def flask_app(kit: AttackKit) -> Flask:
    app = Flask("attack-target")
    app.config.update(kit.server.flask_config(leeway=0, algorithms=list(ALGORITHMS)))
    Authgear(app)

    @app.get("/protected")
    @require_auth
    def protected() -> object:
        return jsonify(sub=current_user.id)

    @app.get("/optional")
    @require_auth(optional=True)
    def optional() -> object:
        return jsonify(sub=current_user.id if current_user else None)

    return app


def whoami(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The wrapped app: says which user the middleware gave it, or why there is none."""
    user = environ.get(ENVIRON_USER)
    error = environ.get(ENVIRON_ERROR)
    body = json.dumps({"sub": user.id if user else None, "error": type(error).__name__ if error else None})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def wsgi_app(kit: AttackKit) -> AuthgearMiddleware:
    return AuthgearMiddleware(whoami, protect=["/api"], **kit.server.settings(leeway=0, algorithms=ALGORITHMS))


def example_flask_api(kit: AttackKit) -> WSGIApplication:
    app: WSGIApplication = load_example("flask_api").create_app(
        kit.server.flask_config(leeway=0, algorithms=list(ALGORITHMS))
    )
    return app


def example_wsgi_app(kit: AttackKit) -> WSGIApplication:
    app: WSGIApplication = load_example("wsgi_app").create_app(**kit.server.settings(leeway=0, algorithms=ALGORITHMS))
    return app


def plain_sub(body: dict[str, Any]) -> Any:
    return body["sub"]


@dataclass(frozen=True)
class Target:
    name: str
    build: Callable[[AttackKit], WSGIApplication]
    protected: str
    #: Where the user id is in the JSON of a 200.
    sub_of: Callable[[dict[str, Any]], Any] = plain_sub


TARGETS = (
    Target("flask", flask_app, "/protected"),
    Target("flask-optional", flask_app, "/optional"),
    Target("wsgi", wsgi_app, "/api/me"),
    Target("wsgi-dot-segments", wsgi_app, "/public/../api/me"),
    Target("example-flask-api", example_flask_api, "/me", lambda body: body["user"]["id"]),
    Target("example-flask-api-optional", example_flask_api, "/hello", lambda body: body["message"][7:-1]),
    Target("example-wsgi-app", example_wsgi_app, "/api/me", lambda body: body["id"]),
)


@pytest.fixture(scope="module")
def kit() -> AttackKit:
    return shared_kit()


@pytest.fixture(scope="module")
def apps(kit: AttackKit) -> dict[str, WSGIApplication]:
    return {target.name: target.build(kit) for target in TARGETS}


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_control_tokens_reach_the_app(apps: dict[str, WSGIApplication], kit: AttackKit, target: Target) -> None:
    for token, sub in ((kit.valid("ctl-rs"), "ctl-rs"), (kit.valid_es256("ctl-es"), "ctl-es")):
        answer = call(apps[target.name], target.protected, f"Bearer {token}")
        assert answer.status == 200
        assert target.sub_of(json.loads(answer.body)) == sub


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@pytest.mark.parametrize("attack", CATALOGUE, ids=[a.id for a in CATALOGUE])
def test_adapter_refuses(apps: dict[str, WSGIApplication], target: Target, attack: Attack) -> None:
    answer = call(apps[target.name], target.protected, attack.authorization)
    assert answer.status == attack.status, answer.body
    headers = dict(answer.headers)
    assert headers["Content-Type"].startswith("application/json")
    assert headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(answer.body)["error"] == ("invalid_request" if attack.status == 400 else "invalid_token")
    text = answer.body.decode("utf-8", "replace")
    for probe in attack.probes():
        assert probe not in text
        assert all(probe not in value for _, value in answer.headers)


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("attack", CATALOGUE, ids=[a.id for a in CATALOGUE])
def test_unprotected_wsgi_path_gets_no_user(apps: dict[str, WSGIApplication], attack: Attack) -> None:
    """Outside ``protect`` the middleware only annotates: the app runs, but never with a user."""
    answer = call(apps["wsgi"], "/elsewhere", attack.authorization)
    assert answer.status == 200
    seen = json.loads(answer.body)
    assert seen["sub"] is None
    assert seen["error"] in ("InvalidRequestError", "InvalidTokenError", "TokenError")


# -- the same catalogue over a real socket -------------------------------------------------------------------


def _sendable(attack: Attack) -> bool:
    """What an HTTP client can put on the wire (no CR, LF or NUL) and a server reads (header lines < 64 KB)."""
    value = attack.authorization
    return len(value) < 60_000 and not any(c in value for c in "\r\n\x00")


HTTP_CATALOGUE = [a for a in CATALOGUE if _sendable(a)]


@pytest.fixture(scope="module")
def http_port(apps: dict[str, WSGIApplication]) -> Iterator[int]:
    """The Flask target served by a threaded Werkzeug server on loopback."""
    with AppServer(apps["flask"]) as server:
        yield server.port


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("attack", HTTP_CATALOGUE, ids=[a.id for a in HTTP_CATALOGUE])
def test_flask_over_http_refuses(http_port: int, attack: Attack) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    try:
        connection.putrequest("GET", "/protected")
        # Header values travel as latin-1 text of the bytes on the wire, as WSGI hands them over.
        connection.putheader("Authorization", attack.authorization.encode("latin-1"))
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        headers = response.getheaders()
    finally:
        connection.close()
    assert response.status == attack.status
    assert dict(headers)["WWW-Authenticate"].startswith("Bearer realm=")
    text = body.decode("utf-8", "replace")
    for probe in attack.probes():
        assert probe not in text
        assert all(probe not in value for _, value in headers)
