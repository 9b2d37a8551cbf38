"""Every Python example of the README and of ``docs/`` runs as written and answers requests as the text says.

A snippet runs against the local Authgear-compatible server: the documentation's endpoints
(``https://myapp.authgear.cloud``, the dev server's ``http://127.0.0.1:9000``) become the server's, and
``AUTHGEAR_ENDPOINT`` in the environment too. Each runnable snippet has a check below, keyed by its name, that
sends the app it built the requests the text around it describes; a snippet without a check fails, so a new
example cannot go untested. ``tests/docs/snippets.py`` says how blocks are marked.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client

from flask_authgear import require_auth
from flask_authgear.testing import AuthgearTestServer

from .snippets import Snippet, all_snippets

SNIPPETS = all_snippets()
BY_NAME = {s.name: s for s in SNIPPETS}
RUNNABLE = [s for s in SNIPPETS if s.runnable]


@dataclass
class Run:
    """What a check works with: the snippet's namespace after it ran (empty for files), and the server."""

    snippet: Snippet
    namespace: dict[str, Any]
    server: AuthgearTestServer
    tmp_path: Path

    def code(self, snippet: Snippet | None = None) -> str:
        return localize((snippet or self.snippet).code, self.server)

    def again(self) -> dict[str, Any]:
        """The snippet run once more, in a new namespace: an app that has served nothing yet."""
        namespace: dict[str, Any] = {"__name__": self.namespace["__name__"]}
        for part in chain(self.snippet):
            exec(compile(self.code(part), part.where, "exec"), namespace)
        return namespace

    def bearer(self, sub: str = "alice", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.issue_token(sub, **claims)}"}


def localize(code: str, server: AuthgearTestServer) -> str:
    """The snippet's code pointed at ``server``, whatever endpoint the documentation shows."""
    port = server.endpoint.rsplit(":", 1)[1]
    code = re.sub(r"https://(<project>|myapp)\.authgear\.cloud", server.endpoint, code)
    code = code.replace("http://127.0.0.1:9000", server.endpoint)
    return code.replace("http://localhost:9000", f"http://localhost:{port}")


def chain(snippet: Snippet) -> list[Snippet]:
    """The snippets that run, in order, for ``snippet``: the ones it continues, then itself."""
    parts = [snippet]
    while parts[0].continues is not None:
        assert parts[0].continues in BY_NAME, f"{parts[0].where}: continues an unknown snippet"
        parts.insert(0, BY_NAME[parts[0].continues])
    return parts


def protected_route(app: Flask) -> None:
    """A ``GET /whoami`` view behind ``@require_auth``, for snippets that configure an app and define no view."""

    @app.get("/whoami")
    @require_auth
    def whoami() -> dict[str, str]:
        from flask_authgear import current_user

        return {"id": current_user.id}


def run_pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` in ``folder``, as a reader runs the tests of their own project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGEAR_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_files(run: Run, *names: str) -> None:
    for name in names:
        snippet = BY_NAME[name]
        assert snippet.file is not None
        target = run.tmp_path / snippet.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(run.code(snippet), encoding="utf-8")


# -- the checks, one per runnable snippet --------------------------------------------------------------------


def check_readme_app(run: Run) -> None:
    client = run.namespace["app"].test_client()
    assert client.get("/me").status_code == 401
    assert client.get("/me").get_json() == {"error": "unauthorized", "error_description": "Authentication is required."}
    assert client.get("/me", headers=run.bearer("alice")).get_json() == {"id": "alice", "roles": []}


def check_quickstart_app(run: Run) -> None:
    check_readme_app(run)
    client = run.namespace["app"].test_client()
    assert client.get("/admin", headers=run.bearer("alice")).status_code == 403
    assert client.get("/admin", headers=run.bearer("alice", roles=["admin"])).get_json() == {"hello": "alice"}


def check_quickstart_issuer(run: Run) -> None:
    protected_route(run.namespace["app"])
    fixed = run.namespace["app"].test_client()
    assert fixed.get("/whoami", headers=run.bearer("alice")).get_json() == {"id": "alice"}
    # Without the issuer and audience, as the page shows first: every request 503, then 401 for the audience.
    port = run.server.endpoint.rsplit(":", 1)[1]
    wrong = Flask("wrong_issuer")
    wrong.config["AUTHGEAR_ENDPOINT"] = f"http://localhost:{port}"
    run.namespace["Authgear"](wrong)
    protected_route(wrong)
    assert wrong.test_client().get("/whoami", headers=run.bearer("alice")).status_code == 503
    issuer_only = Flask("issuer_only")
    issuer_only.config.update(AUTHGEAR_ENDPOINT=f"http://localhost:{port}", AUTHGEAR_ISSUER=run.server.endpoint)
    run.namespace["Authgear"](issuer_only)
    protected_route(issuer_only)
    assert issuer_only.test_client().get("/whoami", headers=run.bearer("alice")).status_code == 401


def check_modes_resolver(run: Run) -> None:
    client = run.namespace["app"].test_client(use_cookies=False)  # the Cookie headers below, as sent
    session = run.server.create_session("alice")
    cookie = {"Cookie": session.cookie}
    assert client.post("/notes", headers=cookie).get_json() == {"by": "alice", "source": "resolver"}
    assert client.post("/notes", headers={"Authorization": session.authorization}).status_code == 201
    assert client.post("/notes", headers={**cookie, "Origin": "https://app.example.com"}).status_code == 201
    assert client.post("/notes", headers={**cookie, "Origin": "https://evil.example"}).status_code == 403
    other = run.server.create_session("bob")
    run.server.revoke(other)
    assert client.post("/notes", headers={"Cookie": other.cookie}).status_code == 401


def check_flask_app(run: Run) -> None:
    client = run.namespace["app"].test_client()
    refused = client.get("/me")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="authgear"'
    assert client.get("/me", headers=run.bearer("alice", roles=["b", "a"])).get_json() == {
        "id": "alice",
        "roles": ["a", "b"],
    }
    assert client.post("/admin/users", headers=run.bearer("alice")).status_code == 403
    created = client.post("/admin/users", headers=run.bearer("alice", roles=["admin"]))
    assert (created.status_code, created.get_json()) == (201, {"created_by": "alice"})
    stale = client.post("/admin/users", headers=run.bearer("alice", roles=["admin"], auth_time=1_000_000_000))
    assert stale.status_code == 401
    assert 'error="insufficient_user_authentication"' in stale.headers["WWW-Authenticate"]
    assert client.get("/hello").get_json() == {"hello": "stranger"}
    assert client.get("/hello", headers=run.bearer("alice")).get_json() == {"hello": "alice"}
    assert client.get("/hello", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def check_flask_browser(run: Run) -> None:
    client = run.namespace["app"].test_client()
    assert client.get("/").get_data(as_text=True) == "Hello stranger"
    assert client.get("/", headers=run.bearer("alice")).get_data(as_text=True) == "Hello alice"
    assert client.get("/", headers={"Authorization": "Bearer not-a-token"}).get_data(as_text=True) == "Hello stranger"
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}
    redirected = client.get("/account?tab=2", headers=browser)
    assert (redirected.status_code, redirected.headers["Location"]) == (302, "/login?next=%2Faccount%3Ftab%3D2")
    assert client.get(redirected.headers["Location"], headers=browser).get_data(as_text=True) == "Sign in with Authgear"
    api = client.get("/account", headers={"Accept": "application/json"})
    assert (api.status_code, api.headers["WWW-Authenticate"]) == (401, 'Bearer realm="authgear"')
    assert client.get("/account", headers={**browser, **run.bearer("alice")}).get_json() == {"id": "alice"}


def check_flask_blueprint(run: Run) -> None:
    client = run.namespace["app"].test_client()
    member = run.bearer("alice", roles=["member"])
    assert client.get("/api/profile", headers=member).get_json() == {"id": "alice", "name": "Alice"}
    assert client.get("/api/profile", headers=run.bearer("alice")).status_code == 403  # not a member
    unknown = client.get("/api/profile", headers=run.bearer("bob", roles=["member"]))
    assert unknown.status_code == 401
    assert unknown.get_json()["error_description"] == "The user is not known to this application."
    assert client.delete("/api/members/alice", headers=member).status_code == 403
    assert (
        client.delete("/api/members/alice", headers=run.bearer("alice", roles=["member", "admin"])).status_code == 204
    )


def check_flask_error_handler(run: Run) -> None:
    client = run.namespace["app"].test_client()
    for answer, status in (
        (client.get("/me"), 401),
        (client.get("/me", headers={"Authorization": "Bearer not-a-token"}), 401),
        (client.get("/me", headers={"Authorization": "Basic x"}), 400),
        (client.post("/admin/users", headers=run.bearer("alice")), 403),
    ):
        assert answer.status_code == status
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="authgear"')
    assert client.get("/me", headers=run.bearer("alice")).status_code == 200


def check_readiness(run: Run) -> None:
    up = run.namespace["app"].test_client().get("/ready")
    assert (up.status_code, up.get_json()["ready"]) == (200, True)
    with run.server.failing("jwks", "500"):
        down = run.again()["app"].test_client().get("/ready")
    assert (down.status_code, down.get_json()["ready"]) == (503, False)


def check_troubleshooting_audience(run: Run) -> None:
    protected_route(run.namespace["app"])
    client = run.namespace["app"].test_client()
    for audience in ([run.server.endpoint], ["https://api.example.com"]):
        assert client.get("/whoami", headers=run.bearer("alice", aud=audience)).status_code == 200
    assert client.get("/whoami", headers=run.bearer("alice", aud=["https://other.example.com"])).status_code == 401


def check_webhooks_app(run: Run) -> None:
    app, secret, path = run.namespace["app"], "secret-from-the-portal", "/authgear/webhook"
    created = run.server.send_event(app, "user.created", secret=secret, path=path, seq=7)
    assert created.status == 200
    assert run.namespace["emails"] == {"user-1": "user@example.com"}
    assert list(run.namespace["events"]) == ["0000000000000007"]  # recorded first, under Authgear's id
    user = {"id": "user-2", "standard_attributes": {"email": "eve@blocked.example"}}
    refused = run.server.send_event(app, "user.pre_create", {"user": user}, secret=secret, path=path)
    assert refused.json["is_allowed"] is False
    assert refused.json["title"] == "Sign-up refused"
    allowed = run.server.send_event(app, "user.pre_create", secret=secret, path=path)
    assert allowed.json == {"is_allowed": True, "mutations": {"user": {"roles": ["member"]}}}
    claims = run.server.send_event(app, "oidc.jwt.pre_create", secret=secret, path=path)
    assert claims.json["mutations"]["jwt"]["payload"]["https://example.com/claims/plan"] == "gold"
    assert run.server.send_event(app, "user.created", secret="wrong", path=path).status == 401


def check_wsgi_middleware(run: Run) -> None:
    client = Client(run.namespace["application"])
    assert client.get("/api/orders").status_code == 401
    assert client.get("/api/orders", headers=run.bearer("alice")).get_data() == b"hello alice"
    assert client.get("/api/health").get_data() == b"hello stranger"
    assert client.get("/", headers=run.bearer("alice")).get_data() == b"hello alice"
    assert client.get("/", headers={"Authorization": "Bearer not-a-token"}).get_data() == b"hello stranger"


def check_wsgi_error_answer(run: Run) -> None:
    client = Client(run.namespace["application"])
    refusals = (({}, 401), ({"Authorization": "Bearer not-a-token"}, 401), ({"Authorization": "Basic x"}, 400))
    for headers, status in refusals:
        answer = client.get("/api/orders", headers=headers)
        assert answer.status_code == status
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="authgear"')
        assert answer.json["error"] in ("unauthorized", "invalid_token", "invalid_request")
    assert client.get("/api/orders", headers=run.bearer("alice")).get_data() == b"hello alice"
    assert "X-Request-Id" not in client.get("/api/orders", headers=run.bearer("alice")).headers


def check_core_verifier(run: Run) -> None:
    who_is = run.namespace["who_is"]
    assert who_is({}) == (
        401,
        'Bearer realm="authgear"',
        {"error": "unauthorized", "error_description": "Authentication is required."},
    )
    assert who_is(run.bearer("alice", roles=["x"])) == (200, None, {"id": "alice", "roles": ["x"]})
    status, challenge, _ = who_is({"Authorization": "Bearer not-a-token"})
    assert (status, challenge.split(",")[0]) == (401, 'Bearer realm="authgear"')


def check_testing_myapp(run: Run) -> None:
    write_files(run, "testing-myapp")
    spec = importlib.util.spec_from_file_location("docs_myapp", run.tmp_path / "myapp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app(run.server.flask_config(webhook_secret=run.server.webhook_secret))
    client = app.test_client()
    assert client.get("/profile", headers=run.bearer("alice")).get_json() == {"id": "alice"}
    assert client.delete("/users/7", headers=run.bearer("dave", roles=["admin"])).get_json() == {"deleted": 7}
    assert client.delete("/users/7", headers=run.bearer("carol", roles=["admin"], is_verified=False)).status_code == 403
    assert run.server.send_event(app, "user.created", path="/hooks/authgear").status == 200
    assert app.extensions["signups"] == ["user-1"]


def check_testing_tests(run: Run) -> None:
    write_files(run, "testing-myapp", "testing-tests")
    result = run_pytest(run.tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout.splitlines()[-1]


def check_testing_jwt_hook(run: Run) -> None:
    write_files(run, "testing-jwt-hook")
    result = run_pytest(run.tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout.splitlines()[-1]


MACHINE_RESOURCE = "https://api.example.com/orders"


def machine_bearer(run: Run, client_id: str = "b892697a2075af58", *scopes: str) -> dict[str, str]:
    token = run.server.machine_token(client_id, resource=MACHINE_RESOURCE, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def check_readme_machines(run: Run) -> None:
    client = run.namespace["app"].test_client()
    assert client.get("/orders", headers=machine_bearer(run, "svc", "read:orders")).get_json() == {
        "client": "svc",
        "orders": [],
    }
    lacking = client.get("/orders", headers=machine_bearer(run, "svc"))
    assert lacking.status_code == 403
    assert lacking.get_json()["error"] == "insufficient_scope" and lacking.get_json()["scope"] == "read:orders"


def check_machines_api(run: Run) -> None:
    client = run.namespace["app"].test_client()
    assert client.get("/me", headers=run.bearer("alice")).get_json() == {"user": "alice"}
    refused = client.get("/me", headers=machine_bearer(run, "svc", "read:orders"))
    assert refused.status_code == 403 and "needs a signed-in user" in refused.get_json()["error_description"]
    answer = client.get("/orders", headers=machine_bearer(run, "svc", "read:orders"))
    assert answer.get_json() == {"orders": [], "for": "svc"}
    lacking = client.get("/orders", headers=machine_bearer(run, "svc", "write:orders"))
    assert lacking.status_code == 403 and lacking.headers["WWW-Authenticate"].endswith('scope="read:orders"')
    assert client.get("/orders", headers=run.bearer("alice")).status_code == 403  # no read:orders in its scope
    assert client.get("/orders", headers=run.bearer("alice", scope="read:orders")).get_json()["for"] == "alice"


def check_machines_loader(run: Run) -> None:
    client = run.namespace["app"].test_client()
    assert client.get("/orders", headers=machine_bearer(run, "b892697a2075af58", "read:orders")).status_code == 200
    stranger = client.get("/orders", headers=machine_bearer(run, "stranger", "read:orders"))
    assert stranger.status_code == 401
    assert stranger.get_json()["error_description"] == "The client is not known to this application."


def check_machines_wsgi(run: Run) -> None:
    client = Client(run.namespace["application"])
    assert client.get("/api/me", headers=run.bearer("alice")).get_data() == b"alice"
    assert client.get("/api/me", headers=machine_bearer(run, "svc", "read:orders")).status_code == 403
    assert client.get("/api/orders/7", headers=machine_bearer(run, "svc", "read:orders")).get_data() == b"client_id_svc"
    assert client.get("/api/orders/7", headers=machine_bearer(run, "svc")).status_code == 403


CHECKS: dict[str, Callable[[Run], None]] = {
    "readme-app": check_readme_app,
    "quickstart-app": check_quickstart_app,
    "quickstart-issuer": check_quickstart_issuer,
    "modes-resolver": check_modes_resolver,
    "flask-app": check_flask_app,
    "flask-blueprint": check_flask_blueprint,
    "flask-browser": check_flask_browser,
    "flask-error-handler": check_flask_error_handler,
    "readiness": check_readiness,
    "troubleshooting-audience": check_troubleshooting_audience,
    "webhooks-app": check_webhooks_app,
    "wsgi-middleware": check_wsgi_middleware,
    "wsgi-error-answer": check_wsgi_error_answer,
    "core-verifier": check_core_verifier,
    "testing-myapp": check_testing_myapp,
    "testing-tests": check_testing_tests,
    "testing-jwt-hook": check_testing_jwt_hook,
    "readme-machines": check_readme_machines,
    "machines-api": check_machines_api,
    "machines-loader": check_machines_loader,
    "machines-wsgi": check_machines_wsgi,
}


# -- the tests -------------------------------------------------------------------------------------------------


def test_every_python_block_is_marked_once_and_checked() -> None:
    assert len(SNIPPETS) >= 10
    for snippet in SNIPPETS:
        assert snippet.spec is not None, (
            f"{snippet.where}: a python block needs a snippet marker, not {snippet.marker!r}"
        )
    names = [s.name for s in SNIPPETS]
    assert len(names) == len(set(names)), "two snippets share a name"
    assert {s.name for s in RUNNABLE} == set(CHECKS), "each runnable snippet has exactly one check"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
def test_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.where, "exec")


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[s.name for s in RUNNABLE])
def test_snippet_runs_and_answers(snippet: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in os.environ:
        if key.startswith("AUTHGEAR_"):
            monkeypatch.delenv(key)
    with AuthgearTestServer() as server:
        monkeypatch.setenv("AUTHGEAR_ENDPOINT", server.endpoint)
        # A module of its own, as a pasted snippet has (dataclasses look their module up in sys.modules).
        module = types.ModuleType("docs_snippet")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        run = Run(snippet, module.__dict__, server, tmp_path)
        if snippet.file is None:
            for part in chain(snippet):
                exec(compile(run.code(part), part.where, "exec"), module.__dict__)
        CHECKS[snippet.name](run)
