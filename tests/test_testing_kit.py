"""The public test kit: the local server's API, its failure switches, and the Flask and WSGI helpers."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from flask import Flask, jsonify
from werkzeug.test import Client

from flask_authgear import Authgear, AuthgearUser, Settings, Verifier, current_user, require_auth
from flask_authgear.core.jose import TokenError, b64url_decode, json_object
from flask_authgear.testing import AuthgearClient, AuthgearTestServer, client_for

CLAIMS = "https://authgear.com/claims/user/"


pytestmark = pytest.mark.usefixtures("reset_server")


def make_app(server: AuthgearTestServer, **settings: object) -> Flask:
    app = Flask(__name__)
    app.test_client_class = AuthgearClient
    server.configure(app, **settings)
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me():
        return jsonify(id=current_user.id, roles=sorted(current_user.roles), verified=current_user.is_verified)

    @app.get("/admin")
    @require_auth(roles=["admin"])
    def admin():
        return jsonify(ok=True)

    @app.get("/maybe")
    @require_auth(optional=True)
    def maybe():
        return jsonify(id=current_user.id if current_user else None)

    return app


def split_token(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decoded header and claims of a compact JWT, without any check of the signature."""
    header, payload, _ = token.split(".")
    return json_object(b64url_decode(header)), json_object(b64url_decode(payload))


# -- tokens --------------------------------------------------------------------------------------------------


def test_issue_token_is_authgear_shaped(server):
    header, claims = split_token(
        server.issue_token("alice", roles=["admin"], is_verified=False, is_anonymous=True, amr=["pwd", "otp"])
    )
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": server.signing_key.kid}
    assert claims["iss"] == server.endpoint and claims["aud"] == [server.endpoint]
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 1800
    assert claims[CLAIMS + "roles"] == ["admin"]
    assert claims[CLAIMS + "is_verified"] is False and claims[CLAIMS + "is_anonymous"] is True
    assert claims["amr"] == ["pwd", "otp"]


def test_extra_claims_and_expired_tokens(server):
    verifier = Verifier(Settings(**server.settings()))
    user = verifier.verify_token(server.issue_token("bob", tenant="acme", scope="read write"))
    assert user.claims["tenant"] == "acme" and user.scopes == {"read", "write"}
    with pytest.raises(TokenError) as exc:
        verifier.verify_token(server.issue_token("bob", expires_in=-120))
    assert exc.value.reason == "expired"


def test_rotate_keys_keeps_old_tokens_valid_until_the_old_key_goes(server):
    old = server.signing_key
    before = server.issue_token("carol")
    new = server.rotate_keys()
    assert server.signing_key is new and [k.kid for k in server.keys] == [new.kid, old.kid]
    assert split_token(server.issue_token())[0]["kid"] == new.kid
    verifier = Verifier(Settings(**server.settings(jwks_refetch_cooldown=0)))
    assert verifier.verify_token(before).id == "carol"
    server.remove_key(old.kid)
    fresh = Verifier(Settings(**server.settings()))
    with pytest.raises(TokenError):
        fresh.verify_token(before)
    server.rotate_keys(keep_old=False)
    assert len(server.keys) == 1


# -- sessions and the resolver ---------------------------------------------------------------------------------


def resolve(server: AuthgearTestServer, **headers: str) -> requests.Response:
    return requests.get(f"{server.endpoint}/_resolver/resolve", headers=headers, timeout=5)


def test_sessions_by_bearer_and_cookie_and_revocation(server):
    session = server.create_session("dave", roles=["ops"], amr=["pwd", "mfa"])
    answer = resolve(server, Authorization=session.authorization)
    assert answer.headers["X-Authgear-Session-Valid"] == "true"
    assert answer.headers["X-Authgear-User-Id"] == "dave"
    assert answer.headers["X-Authgear-User-Roles"] == "ops"
    assert resolve(server, Cookie=session.cookie).headers["X-Authgear-Session-Valid"] == "true"
    server.revoke(session)
    assert "X-Authgear-Session-Valid" not in resolve(server, Authorization=session.authorization).headers
    assert resolve(server, Cookie=session.cookie).headers["X-Authgear-Session-Valid"] == "false"


def test_revoke_by_token_text_and_jwt(server):
    session = server.create_session("erin")
    server.revoke(session.cookie_value)
    assert resolve(server, Cookie=session.cookie).headers["X-Authgear-Session-Valid"] == "false"
    jwt = server.issue_token("erin")
    assert resolve(server, Authorization=f"Bearer {jwt}").headers["X-Authgear-Session-Valid"] == "true"
    server.revoke(jwt)
    assert "X-Authgear-Session-Valid" not in resolve(server, Authorization=f"Bearer {jwt}").headers


def test_reset_forgets_sessions_failures_and_counters_but_keeps_keys(server):
    kid = server.signing_key.kid
    session = server.create_session("frank")
    server.fail("jwks", "500")
    requests.get(f"{server.endpoint}/oauth2/jwks", timeout=5)
    server.reset()
    assert server.hits("jwks") == 0
    assert requests.get(f"{server.endpoint}/oauth2/jwks", timeout=5).status_code == 200
    assert "X-Authgear-Session-Valid" not in resolve(server, Authorization=session.authorization).headers
    assert server.signing_key.kid == kid


# -- failure switches ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status"),
    [("500", 500), ("garbage", 200), ("html", 200), ("slow", 504), ("redirect", 302)],
)
def test_failing_context_manager_heals_after_the_block(server, mode, status):
    url = f"{server.endpoint}/oauth2/jwks"
    with server.failing("jwks", mode, delay=0.05):
        response = requests.get(url, timeout=5, allow_redirects=False)
        assert response.status_code == status
        if status == 200:
            with pytest.raises(ValueError):
                response.json()["keys"][0]["kid"]
    assert requests.get(url, timeout=5).json()["keys"][0]["kid"] == server.signing_key.kid


def test_resolver_failure_is_a_503_for_a_resolver_mode_app(server):
    app = make_app(server, mode="resolver")
    session = server.create_session("gina")
    client = app.test_client()
    client.use_session(session)
    assert client.get("/me").status_code == 200
    with server.failing("resolver", "500"):
        app2 = make_app(server, mode="resolver")  # a fresh app: nothing cached
        other = app2.test_client()
        other.use_session(session)
        assert other.get("/me").status_code == 503


def test_unreachable_refuses_connections_then_comes_back(server):
    url = f"{server.endpoint}/oauth2/jwks"
    with server.unreachable(), pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
    assert requests.get(url, timeout=5).status_code == 200


def test_unknown_failure_names_are_refused(server):
    with pytest.raises(ValueError, match="unknown failure"):
        server.fail("jwks", "explode")
    with pytest.raises(ValueError, match="unknown target"):
        server.fail("userinfo", "500")


# -- configure, middleware -------------------------------------------------------------------------------------


def test_configure_sets_the_config_and_must_come_first(server):
    app = Flask(__name__)
    assert server.configure(app, leeway=5) is app
    assert app.config["AUTHGEAR_ENDPOINT"] == server.endpoint and app.config["AUTHGEAR_LEEWAY"] == 5
    Authgear(app)
    with pytest.raises(RuntimeError, match="before Authgear"):
        server.configure(app)


def test_middleware_trusts_the_server(server):
    def plain(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["authgear.user"].id.encode()]

    client = Client(server.middleware(plain, protect=["/"]))
    assert client.get("/").status_code == 401
    response = client.get("/", headers={"Authorization": f"Bearer {server.issue_token('hana')}"})
    assert response.status_code == 200 and response.data == b"hana"


# -- the Flask test client -------------------------------------------------------------------------------------


def test_client_signed_in_as_a_user_with_roles(server):
    app = make_app(server)
    client = app.test_client(user="alice", roles=["admin"])
    assert isinstance(client, AuthgearClient)
    assert client.get("/me").get_json() == {"id": "alice", "roles": ["admin"], "verified": True}
    assert client.get("/admin").status_code == 200
    assert app.test_client(user="bob").get("/admin").status_code == 403


def test_client_without_user_is_anonymous_and_can_log_in_and_out(server):
    app = make_app(server)
    client = app.test_client()
    assert client.token is None
    assert client.get("/me").status_code == 401
    assert client.get("/maybe").get_json() == {"id": None}
    token = client.login("ivy", is_verified=False)
    assert client.token == token
    assert client.get("/me").get_json()["verified"] is False
    client.logout()
    assert client.get("/me").status_code == 401


def test_client_from_an_authgear_user_object(server):
    app = make_app(server)
    user = AuthgearUser(
        id="jack",
        roles=frozenset({"admin", "ops"}),
        is_verified=True,
        authenticated_at=datetime.fromtimestamp(int(time.time()) - 30, tz=timezone.utc),
    )
    client = app.test_client(user=user)
    assert client.get("/me").get_json() == {"id": "jack", "roles": ["admin", "ops"], "verified": True}
    assert split_token(client.token or "")[1]["auth_time"] == int(user.authenticated_at.timestamp())


def test_client_with_an_exact_token(server):
    app = make_app(server)
    expired = app.test_client(token=server.issue_token("kim", expires_in=-600))
    response = expired.get("/me")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_client_with_a_cookie_session_in_resolver_mode(server):
    app = make_app(server, mode="resolver")
    client = app.test_client()
    client.use_session(server.create_session("lee", roles=["admin"]), cookie=True)
    assert client.environ_base.get("HTTP_AUTHORIZATION") is None
    assert client.get("/admin").status_code == 200


def test_client_finds_the_server_of_an_app_built_by_a_factory(server):
    def create_app(config):
        app = Flask(__name__)
        app.config.update(config)
        Authgear(app, leeway=0)

        @app.get("/me")
        @require_auth
        def me():
            return jsonify(id=current_user.id)

        return app

    app = create_app(server.flask_config())
    app.test_client_class = AuthgearClient
    assert app.test_client(user="lou").get("/me").get_json() == {"id": "lou"}
    with AuthgearTestServer() as other:
        other_app = create_app(other.flask_config())
        other_app.test_client_class = AuthgearClient
        client = other_app.test_client(user="max")
        assert client.get("/me").status_code == 200
        assert client.server is other


def test_client_for_needs_no_client_class(server):
    app = Flask(__name__)
    server.configure(app)
    Authgear(app)

    @app.get("/admin")
    @require_auth(roles="admin")
    def admin():
        return jsonify(id=current_user.id)

    assert client_for(app, server, "mia", roles=["admin"]).get("/admin").get_json() == {"id": "mia"}
    assert client_for(app, server, "ned").get("/admin").status_code == 403
    assert client_for(app, server, None).get("/admin").status_code == 401
    assert server.test_client(app, "olga", roles=["admin"]).get("/admin").status_code == 200


def test_client_without_a_known_server_says_what_to_do(server):
    app = Flask(__name__)
    app.config["AUTHGEAR_ENDPOINT"] = "https://myapp.authgear.cloud"
    app.test_client_class = AuthgearClient
    with pytest.raises(RuntimeError, match=r"server.configure\(app\)"):
        app.test_client(user="pat")
    with pytest.raises(TypeError, match="without a user"):
        app.test_client(roles=["admin"])


# -- the fixtures ----------------------------------------------------------------------------------------------


def test_token_factory_fixture(authgear_server, authgear_token):
    token = authgear_token("quinn", roles=["admin"])
    user = Verifier(Settings(**authgear_server.settings())).verify_token(token)
    assert user.id == "quinn" and user.roles == {"admin"}


def test_shared_server_is_reset_after_each_test_first(authgear_shared_server):
    authgear_shared_server.create_session("rita")
    authgear_shared_server.fail("resolver", "500")
    assert authgear_shared_server.hits("jwks") == 0


def test_shared_server_is_reset_after_each_test_second(authgear_shared_server):
    assert requests.get(f"{authgear_shared_server.endpoint}/_resolver/resolve", timeout=5).status_code == 200
