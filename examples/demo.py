"""``make demo``: the example Flask API against the built-in Authgear-compatible server, no internet needed.

It starts :class:`flask_authgear.testing.AuthgearTestServer` and ``examples/flask_api.py`` on 127.0.0.1 (real
HTTP, random ports), plays a short scripted session with real requests, prints every answer, and exits 0 only
when each answer is the expected one. Both servers are stopped before it exits.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flask_api import create_app

from flask_authgear.testing import AuthgearTestServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

AppFactory = Callable[[Mapping[str, Any]], "WSGIApplication"]


@dataclass
class Step:
    title: str
    path: str
    token: str | None
    status: int
    #: How the token is shown in the transcript.
    label: str = ""
    challenge: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve(app: WSGIApplication) -> Iterator[str]:
    """Serve ``app`` on a random loopback port in a thread; yield its base URL; always shut it down."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def tamper(token: str, **claims: Any) -> str:
    """The token with its payload edited (here: to claim the admin role) and the original signature kept."""
    head, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(claims)
    edited = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return f"{head}.{edited}.{signature}"


def script(authgear: AuthgearTestServer) -> list[Step]:
    alice = authgear.issue_token("alice", roles=["viewer"])
    admin = authgear.issue_token("bob", roles=["admin"])
    forged = tamper(alice, **{"https://authgear.com/claims/user/roles": ["admin"]})
    invalid = (
        'Bearer realm="authgear", error="invalid_token", error_description="The access token signature is invalid."'
    )
    no_role = (
        'Bearer realm="authgear", error="insufficient_scope", '
        'error_description="The user does not have a required role."'
    )
    return [
        Step("A public route, no token", "/public", None, 200),
        Step(
            "A protected route without a token",
            "/me",
            None,
            401,
            challenge='Bearer realm="authgear"',
            body={"error": "unauthorized"},
        ),
        Step("With alice's valid token", "/me", alice, 200, "<alice's token>", body={"user": {"id": "alice"}}),
        Step(
            "With alice's token edited to claim the admin role",
            "/me",
            forged,
            401,
            "<alice's token, payload edited>",
            invalid,
            {"error": "invalid_token"},
        ),
        Step(
            "Alice (not an admin) on the admin route",
            "/admin",
            alice,
            403,
            "<alice's token>",
            no_role,
            {"error": "insufficient_scope"},
        ),
        Step(
            "Bob (an admin) on the admin route",
            "/admin",
            admin,
            200,
            "<bob's token>",
            body={"message": "Welcome to the admin area, bob."},
        ),
    ]


def _matches(expected: Any, actual: Any) -> bool:
    """``expected`` is a subset of ``actual`` (nested dicts compared key by key)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _matches(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


def run_demo(app_factory: AppFactory = create_app, out: TextIO = sys.stdout) -> int:
    """Play the session; return the number of unexpected answers (0 means success)."""
    failures = 0
    with AuthgearTestServer() as authgear:
        app = app_factory(authgear.flask_config())
        with serve(app) as base, requests.Session() as http:
            http.trust_env = False  # loopback only: never through a proxy from the environment
            print(f"Local Authgear-compatible server: {authgear.endpoint}", file=out)
            print(f"Example app (examples/flask_api.py): {base}", file=out)
            steps = script(authgear)
            for number, step in enumerate(steps, 1):
                headers = {} if step.token is None else {"Authorization": f"Bearer {step.token}"}
                response = http.get(base + step.path, headers=headers, timeout=10)
                print(f"\n{number}. {step.title}", file=out)
                shown = "" if step.token is None else f"  (Authorization: Bearer {step.label})"
                print(f"   > GET {step.path}{shown}", file=out)
                print(f"   < {response.status_code} {response.reason}", file=out)
                challenge = response.headers.get("WWW-Authenticate")
                if challenge is not None:
                    print(f"   < WWW-Authenticate: {challenge}", file=out)
                print(f"   < {response.text.strip()}", file=out)
                problems = []
                if response.status_code != step.status:
                    problems.append(f"expected status {step.status}, got {response.status_code}")
                if challenge != step.challenge:
                    problems.append(f"expected WWW-Authenticate {step.challenge!r}, got {challenge!r}")
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not _matches(step.body, body):
                    problems.append(f"expected a body containing {json.dumps(step.body)}")
                for problem in problems:
                    print(f"   UNEXPECTED: {problem}", file=out)
                failures += bool(problems)
    print(file=out)
    if failures:
        print(f"FAILED: {failures} of {len(steps)} answers differ from the expected ones.", file=out)
    else:
        print(f"OK: all {len(steps)} answers as expected. Both servers are stopped.", file=out)
    return failures


def main() -> int:
    return 1 if run_demo() else 0


if __name__ == "__main__":
    sys.exit(main())
