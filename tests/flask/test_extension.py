"""The Authgear Flask extension: set-up, several apps, forged headers, error handlers, verify_request."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, request

from flask_authgear import (
    Authgear,
    AuthgearError,
    AuthgearUser,
    ConfigurationError,
    ForbiddenError,
    Verifier,
    current_user,
    get_current_user,
    require_auth,
    verify_request,
)
from flask_authgear.core.request import vary_on_credentials
from flask_authgear.flask.current import _AppState as HeaderScrubber
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer

FORGED = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "forged-admin",
    "X-Authgear-User-Roles": "admin",
}


@pytest.fixture(scope="module")
def other_server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as running:
        yield running


def add_me_route(app: Flask) -> None:
    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user": current_user.id}


# -- set-up --------------------------------------------------------------------------------------------------


def test_app_given_to_the_constructor(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    ext = Authgear(app)
    add_me_route(app)
    assert app.extensions["authgear"] is ext
    assert isinstance(ext.verifier, Verifier)
    assert ext.settings.endpoint == server.endpoint
    response = app.test_client().get("/me", headers=bearer(server.issue_token("u1")))
    assert response.get_json() == {"user": "u1"}


def test_keyword_settings_override_the_config(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT="https://not-used.example", AUTHGEAR_REALM="from-config")
    ext = Authgear(app, endpoint=server.endpoint)
    add_me_route(app)
    assert ext.settings.endpoint == server.endpoint
    assert ext.settings.realm == "from-config"
    response = app.test_client().get("/me")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="from-config"'
    assert app.test_client().get("/me", headers=bearer(server.issue_token("u2"))).status_code == 200


def test_init_app_keywords_win_over_constructor_keywords(server: AuthgearTestServer) -> None:
    ext = Authgear(realm="constructor")
    app = Flask(__name__)
    app.config.update(server.flask_config())
    ext.init_app(app, realm="init-app")
    assert ext.settings.realm == "init-app"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({}, "AUTHGEAR_ENDPOINT is required", id="missing-endpoint"),
        pytest.param({"AUTHGEAR_ENDPOINT": "myapp.authgear.cloud"}, "absolute http", id="not-a-url"),
        pytest.param({"AUTHGEAR_ENDPOINT": "http://myapp.authgear.cloud"}, "plain http", id="http-remote"),
        pytest.param(
            {"AUTHGEAR_ENDPOINT": "https://a.example", "AUTHGEAR_MODE": "magic"}, "AUTHGEAR_MODE", id="bad-mode"
        ),
        pytest.param({"AUTHGEAR_ENDPOINT": "https://a.example", "AUTHGEAR_ALGORITHMS": ["HS256"]}, "HS256", id="hs256"),
    ],
)
def test_bad_configuration_fails_at_start_up(config: dict[str, Any], message: str) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message):
        Authgear(app)
    assert "authgear" not in app.extensions


def test_one_extension_serves_several_apps(server: AuthgearTestServer, other_server: AuthgearTestServer) -> None:
    ext = Authgear()
    apps = []
    for running in (server, other_server):
        app = Flask(__name__)
        app.config.update(running.flask_config())
        ext.init_app(app)
        add_me_route(app)
        apps.append(app)
    first, second = apps
    assert first.extensions["authgear"] is second.extensions["authgear"] is ext
    with first.app_context():
        first_verifier = ext.verifier
        assert ext.settings.endpoint == server.endpoint
    with second.app_context():
        assert ext.verifier is not first_verifier
        assert ext.settings.endpoint == other_server.endpoint
    token_a, token_b = server.issue_token("a"), other_server.issue_token("b")
    assert first.test_client().get("/me", headers=bearer(token_a)).get_json() == {"user": "a"}
    assert second.test_client().get("/me", headers=bearer(token_b)).get_json() == {"user": "b"}
    # Each app trusts only its own Authgear project.
    assert first.test_client().get("/me", headers=bearer(token_b)).status_code == 401
    assert second.test_client().get("/me", headers=bearer(token_a)).status_code == 401


def test_missing_extension_is_a_clear_runtime_error() -> None:
    app = Flask(__name__)
    add_me_route(app)
    with app.test_request_context("/me"), pytest.raises(RuntimeError, match="not initialised"):
        verify_request()
    app.testing = True
    with pytest.raises(RuntimeError, match=r"Authgear\(app\)"):
        app.test_client().get("/me")


def test_extension_initialised_for_another_app_only(server: AuthgearTestServer) -> None:
    ext = Authgear()
    with pytest.raises(RuntimeError, match="not initialised"):
        _ = ext.verifier
    app = Flask(__name__)
    app.config.update(server.flask_config())
    ext.init_app(app)
    foreign = Flask(__name__)
    foreign.extensions["authgear"] = ext  # copied over by mistake, never initialised for this app
    with foreign.test_request_context("/"), pytest.raises(RuntimeError, match="not initialised for this app"):
        verify_request()


# -- forged X-Authgear-* headers -----------------------------------------------------------------------------


def header_app(server: AuthgearTestServer, **overrides: Any) -> tuple[Flask, list[dict[str, str | None]]]:
    app = Flask(__name__)
    app.config.update(server.flask_config(**overrides))
    seen: list[dict[str, str | None]] = []

    @app.before_request
    def registered_before_the_extension() -> None:
        seen.append({name: request.headers.get(name) for name in FORGED})

    Authgear(app)

    @app.get("/plain")
    def plain() -> dict[str, Any]:
        return {name: request.headers.get(name) for name in FORGED}

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user": current_user.id, **{name: request.headers.get(name) for name in FORGED}}

    return app, seen


def test_forged_headers_are_removed_before_anything_reads_them(server: AuthgearTestServer) -> None:
    app, seen = header_app(server)
    client = app.test_client()
    empty = dict.fromkeys(FORGED)
    assert client.get("/plain", headers=FORGED).get_json() == empty
    assert client.get("/me", headers=FORGED).status_code == 401
    response = client.get("/me", headers={**FORGED, **bearer(server.issue_token("real"))})
    assert response.get_json() == {"user": "real", **empty}
    assert client.get("/missing", headers=FORGED).status_code == 404
    assert seen == [empty] * 4
    lowercase = {name.lower(): value for name, value in FORGED.items()}
    assert client.get("/plain", headers=lowercase).get_json() == empty


PROXIED = {
    "X-Authgear-Session-Valid": "true",
    "X-Authgear-User-Id": "proxied-user",
    "X-Authgear-User-Roles": "admin,editor",
}


def test_routes_without_authentication_do_not_vary(server: AuthgearTestServer) -> None:
    app, _ = header_app(server)
    client = app.test_client()
    assert "Vary" not in client.get("/plain").headers
    assert set(client.get("/me", headers=bearer(server.issue_token())).vary) == {"Authorization", "Cookie"}


def test_proxy_mode_reads_the_headers_of_a_trusted_proxy(server: AuthgearTestServer) -> None:
    app, seen = header_app(server, mode="proxy", trusted_proxies=["127.0.0.0/8"])
    client = app.test_client()
    assert client.get("/plain", headers=PROXIED).get_json() == PROXIED
    assert client.get("/me", headers=PROXIED).get_json() == {"user": "proxied-user", **PROXIED}
    assert seen == [PROXIED, PROXIED]


def test_proxy_mode_strips_the_headers_of_other_peers(server: AuthgearTestServer) -> None:
    app, seen = header_app(server, mode="proxy", trusted_proxies=["10.0.0.1"])
    client = app.test_client()
    empty = dict.fromkeys(FORGED)
    assert client.get("/plain", headers=PROXIED).get_json() == empty
    response = client.get("/me", headers=PROXIED)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authgear"'
    assert seen == [empty, empty]
    trusted = client.get("/me", headers=PROXIED, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert trusted.get_json()["user"] == "proxied-user"


def test_header_scrubber_is_installed_once(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    original = app.wsgi_app
    app.config.update(server.flask_config())
    ext = Authgear(app)
    ext.init_app(app)
    assert isinstance(app.wsgi_app, HeaderScrubber)
    assert app.wsgi_app.wsgi_app == original  # wrapped once, not twice
    assert app.wsgi_app.verifier is ext.verifier  # bound to the newest settings
    (hook,) = app.before_request_funcs[None]  # one header-removal hook, not two
    assert hook == app.wsgi_app.scrub_bypassed


# -- errors ---------------------------------------------------------------------------------------------------


def test_flask_errorhandler_after_init(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    add_me_route(app)

    @app.errorhandler(AuthgearError)
    def handle(error: AuthgearError) -> tuple[str, int]:
        return f"custom {error.status_code}", error.status_code

    response = app.test_client().get("/me")
    assert (response.status_code, response.text) == (401, "custom 401")


def test_flask_errorhandler_before_init_is_kept(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())

    @app.errorhandler(AuthgearError)
    def handle(error: AuthgearError) -> tuple[str, int]:
        return "mine", error.status_code

    Authgear(app)
    add_me_route(app)
    assert app.test_client().get("/me").text == "mine"


def test_errorhandler_for_one_subclass_only(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)

    @app.get("/admin")
    @require_auth(roles=["admin"])
    def admin() -> str:
        return "admin"

    @app.errorhandler(ForbiddenError)
    def forbidden(error: ForbiddenError) -> tuple[str, int]:
        return "go away", 403

    client = app.test_client()
    assert client.get("/admin", headers=bearer(server.issue_token(roles=["x"]))).text == "go away"
    response = client.get("/admin")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authgear"'


def test_blueprint_errorhandler_wins_for_its_routes(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    add_me_route(app)
    bp = Blueprint("api", __name__)

    @bp.get("/api/me")
    @require_auth
    def api_me() -> str:
        return "ok"

    @bp.errorhandler(AuthgearError)
    def api_error(error: AuthgearError) -> tuple[str, int]:
        return "api error", error.status_code

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/api/me").text == "api error"
    assert client.get("/me").get_json()["error"] == "unauthorized"


def test_a_whole_blueprint_protected_by_before_request(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    bp = Blueprint("admin", __name__, url_prefix="/admin")

    @bp.before_request
    @require_auth(roles=["admin"])
    def protect() -> None:
        """Every route of the blueprint needs the admin role."""

    @bp.get("/users")
    def users() -> dict[str, Any]:
        return {"admin": current_user.id}

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/admin/users").status_code == 401
    assert client.get("/admin/users", headers=bearer(server.issue_token(roles=["user"]))).status_code == 403
    ok = client.get("/admin/users", headers=bearer(server.issue_token("root", roles=["admin"])))
    assert ok.get_json() == {"admin": "root"}


def test_no_app_wide_handler_for_other_exceptions(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    assert set(app.error_handler_spec[None][None]) == {AuthgearError}
    assert all(not handlers for code, handlers in app.error_handler_spec[None].items() if code is not None)


# -- verify_request, current_user, g ------------------------------------------------------------------------


def test_verify_request_inside_a_view(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)

    @app.get("/maybe")
    def maybe() -> dict[str, Any]:
        user = verify_request(optional=True)
        return {"user": None if user is None else user.id, "same": user is get_current_user()}

    @app.get("/strict")
    def strict() -> dict[str, Any]:
        user = verify_request(all_roles=["a", "b"])
        assert user is not None
        return {"user": user.id}

    client = app.test_client()
    assert client.get("/maybe").get_json() == {"user": None, "same": True}
    assert client.get("/maybe", headers=bearer(server.issue_token("m"))).get_json() == {"user": "m", "same": True}
    assert client.get("/maybe", headers=bearer("bad")).status_code == 401
    assert client.get("/strict", headers=bearer(server.issue_token("s", roles=["a"]))).status_code == 403
    assert client.get("/strict", headers=bearer(server.issue_token("s", roles=["b", "a"]))).get_json() == {"user": "s"}


def recording_app(server: AuthgearTestServer) -> tuple[Flask, list[AuthgearUser | None]]:
    """An app with the extension that records, after each request, the user it stored for the request."""
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    after: list[AuthgearUser | None] = []

    @app.after_request
    def record(response: Response) -> Response:
        after.append(get_current_user())
        return response

    return app, after


def test_user_is_stored_only_after_every_check(server: AuthgearTestServer) -> None:
    app, after = recording_app(server)

    @app.get("/admin")
    @require_auth(roles=["admin"], max_auth_age=60)
    def admin() -> str:
        return "admin"

    client = app.test_client()
    assert client.get("/admin", headers=bearer(server.issue_token("u", roles=["user"]))).status_code == 403
    assert (
        client.get("/admin", headers=bearer(server.issue_token("u", roles=["admin"], auth_time=0))).status_code == 401
    )
    assert after == [None, None]
    assert client.get("/admin", headers=bearer(server.issue_token("u", roles=["admin"]))).status_code == 200
    assert after[-1] is not None and after[-1].id == "u"


def test_a_later_failed_check_removes_the_user(server: AuthgearTestServer) -> None:
    app, after = recording_app(server)

    @app.get("/two-steps")
    @require_auth
    def two_steps() -> str:
        verify_request(roles=["admin"])  # a stricter check for part of the view
        return "admin"

    response = app.test_client().get("/two-steps", headers=bearer(server.issue_token("u", roles=["user"])))
    assert response.status_code == 403
    assert after == [None]


def test_current_user_outside_a_check_authenticates_on_first_read(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    with app.test_request_context("/", headers=bearer(server.issue_token("x"))):
        assert "authgear.user" not in request.environ
        assert current_user.id == "x"
        assert request.environ["authgear.user"] is get_current_user()
    with app.test_request_context("/", headers=bearer("garbage")):
        assert not current_user
        assert get_current_user() is None
        assert request.environ["authgear.user"] is None


def test_current_user_proxy_reads_the_request_user_and_nothing_else(server: AuthgearTestServer) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    seen: dict[str, Any] = {}

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        user = get_current_user()
        seen.update(
            same=current_user._get_current_object() is user,  # type: ignore[attr-defined]
            equal=current_user == user,
            instance=isinstance(current_user, AuthgearUser),
            method=current_user.has_role("admin"),
            missing=not hasattr(current_user, "no_such_attribute"),
        )
        return {"sub": current_user.id, "roles": sorted(current_user.roles)}

    response = app.test_client().get("/me", headers=bearer(server.issue_token("alice", roles=["admin"])))
    assert response.get_json() == {"sub": "alice", "roles": ["admin"]}
    assert seen == {"same": True, "equal": True, "instance": True, "method": True, "missing": True}
    # Outside a request, and in a request without valid credentials, there is no user behind the proxy.
    assert not current_user
    with pytest.raises(AttributeError):
        current_user.id  # noqa: B018
    with app.test_request_context("/", headers=bearer(server.issue_token("mallory", expires_in=-600))):
        assert not current_user
        with pytest.raises(AttributeError):
            current_user.id  # noqa: B018


def test_require_auth_keeps_the_view_signature() -> None:
    def view(item_id: int, *, verbose: bool = False) -> str:
        """Docs."""
        return str(item_id)

    for wrapped in (require_auth(view), require_auth(roles=["a"])(view), require_auth()(view)):
        assert inspect.signature(wrapped) == inspect.signature(view)
        assert wrapped.__name__ == "view"
        assert wrapped.__doc__ == "Docs."


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"roles": []}, id="empty-roles"),
        pytest.param({"all_roles": [""]}, id="empty-role-name"),
        pytest.param({"roles": [1]}, id="non-string-role"),
        pytest.param({"max_auth_age": -1}, id="negative-age"),
        pytest.param({"max_auth_age": "300"}, id="string-age"),
        pytest.param({"max_auth_age": float("nan")}, id="nan-age"),
        pytest.param({"max_auth_age": True}, id="bool-age"),
    ],
)
def test_bad_route_options_fail_when_declared(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        require_auth(**options)


@pytest.mark.parametrize("wrapped", [True, False], ids=["through-the-wrapper", "wrapper-bypassed"])
def test_vary_merges_with_the_apps_own_vary(server: AuthgearTestServer, wrapped: bool) -> None:
    app = Flask(__name__)
    app.config.update(server.flask_config())
    Authgear(app)
    if not wrapped:  # as a dispatcher holding the bare wsgi_app: the first hook adds Vary instead
        app.wsgi_app = app.wsgi_app.wsgi_app  # type: ignore[attr-defined,method-assign]

    @app.get("/me")
    @require_auth
    def me() -> Response:
        return Response("ok", headers={"Vary": "Accept-Encoding, cookie"})

    @app.get("/star")
    @require_auth
    def star() -> Response:
        return Response("ok", headers={"Vary": "*"})

    client = app.test_client()
    headers = bearer(server.issue_token())
    assert client.get("/me", headers=headers).headers.getlist("Vary") == ["Accept-Encoding, cookie, Authorization"]
    assert client.get("/star", headers=headers).headers.getlist("Vary") == ["*"]
    # A refusal depends on the credentials too (and is never stored: no-store).
    refused = client.get("/me")
    assert refused.status_code == 401 and refused.headers.getlist("Vary") == ["Authorization, Cookie"]


def test_vary_on_credentials_headers() -> None:
    assert vary_on_credentials([]) == [("Vary", "Authorization, Cookie")]
    assert vary_on_credentials([("vary", "")]) == [("vary", "Authorization, Cookie")]
    assert vary_on_credentials([("Vary", "Authorization, Cookie")]) == [("Vary", "Authorization, Cookie")]
