"""The public test kit: the local server's API, its failure switches, and the Flask and WSGI helpers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from flask import Flask, jsonify, request
from werkzeug.test import Client

from flask_authgear import Authgear, AuthgearMiddleware, AuthgearUser, Settings, Verifier, current_user, require_auth
from flask_authgear.core.jose import b64url_decode
from flask_authgear.core.json import loads_object
from flask_authgear.core.refusals import TokenError
from flask_authgear.testing import (
    AuthgearClient,
    AuthgearTestServer,
    HookError,
    client_for,
    configure,
    events,
)
from flask_authgear.user import CLAIM_ROLES
from flask_authgear.webhooks import BLOCKING_EVENTS, EVENT_TYPES, NON_BLOCKING_EVENTS
from tests.support.app_server import AppServer
from tests.support.auth import bearer
from tests.support.net import free_port

CLAIMS = "https://authgear.com/claims/user/"
#: ``payload.user`` as the Authgear reference lists it.
USER_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "last_login_at",
    "is_anonymous",
    "is_verified",
    "is_disabled",
    "is_deactivated",
    "is_anonymized",
    "can_reauthenticate",
    "standard_attributes",
    "custom_attributes",
    "x_web3",
    "roles",
    "groups",
)
#: The context fields Authgear always sends (pkg/api/event/context.go: no omitempty).
CONTEXT_FIELDS = ("timestamp", "user_id", "triggered_by", "audit_context", "preferred_languages", "language")


pytestmark = pytest.mark.usefixtures("reset_server")


def make_app(server: AuthgearTestServer, **settings: object) -> Flask:
    app = Flask(__name__)
    app.test_client_class = AuthgearClient
    configure(app, server, **settings)
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
    return loads_object(b64url_decode(header)), loads_object(b64url_decode(payload))


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


def test_a_session_was_authenticated_now_unless_told_otherwise(server):
    before = int(time.time())
    now = resolve(server, Authorization=server.create_session("eve").authorization).headers
    assert before <= int(now["X-Authgear-Session-Authenticated-At"]) <= time.time()
    unknown = server.create_session("eve", authenticated_at=None)
    assert "X-Authgear-Session-Authenticated-At" not in resolve(server, Authorization=unknown.authorization).headers
    assert (unknown.roles, unknown.amr) == ((), ("pwd",))


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
    assert configure(app, server, leeway=5) is app
    assert app.config["AUTHGEAR_ENDPOINT"] == server.endpoint and app.config["AUTHGEAR_LEEWAY"] == 5
    Authgear(app)
    with pytest.raises(RuntimeError, match="before Authgear"):
        configure(app, server)


def test_middleware_trusts_the_server(server):
    def plain(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["authgear.user"].id.encode()]

    client = Client(AuthgearMiddleware(plain, **server.settings(protect=["/"])))
    assert client.get("/").status_code == 401
    response = client.get("/", headers=bearer(server.issue_token("hana")))
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


def test_client_finds_the_fixture_server_of_an_app_built_by_a_factory(authgear_server, authgear_shared_server):
    def create_app(config):
        app = Flask(__name__)
        app.config.update(config)
        Authgear(app, leeway=0)

        @app.get("/me")
        @require_auth
        def me():
            return jsonify(id=current_user.id)

        app.test_client_class = AuthgearClient
        return app

    app = create_app(authgear_server.flask_config())
    client = app.test_client(user="lou")
    assert client.get("/me").get_json() == {"id": "lou"}
    assert client.server is authgear_server
    other = create_app(authgear_shared_server.flask_config()).test_client(user="max")
    assert other.get("/me").status_code == 200
    assert other.server is authgear_shared_server


def test_a_server_no_fixture_holds_is_not_found_by_endpoint(server):
    """No registry of every running server: a server the test started itself is given with configure()."""
    app = Flask(__name__)
    app.config.update(server.flask_config())
    app.test_client_class = AuthgearClient
    with pytest.raises(RuntimeError, match="no AuthgearTestServer"):
        app.test_client(user="lou")


def test_client_for_needs_no_client_class(server):
    app = Flask(__name__)
    configure(app, server)
    Authgear(app)

    @app.get("/admin")
    @require_auth(roles="admin")
    def admin():
        return jsonify(id=current_user.id)

    assert client_for(app, server, "mia", roles=["admin"]).get("/admin").get_json() == {"id": "mia"}
    assert client_for(app, server, "ned").get("/admin").status_code == 403
    assert client_for(app, server, None).get("/admin").status_code == 401


def test_client_without_a_known_server_says_what_to_do(server):
    app = Flask(__name__)
    app.config["AUTHGEAR_ENDPOINT"] = "https://myapp.authgear.cloud"
    app.test_client_class = AuthgearClient
    with pytest.raises(RuntimeError, match=r"configure\(app, server\)"):
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


# -- webhook events ------------------------------------------------------------------------------------------


def webhook_app(secret_of, answer=lambda event: {"is_allowed": True}):
    """A Flask app whose ``POST /hook`` checks the signature over the raw body, records the event and answers."""
    app = Flask(__name__)
    app.received = []

    @app.post("/hook")
    def hook():
        raw = request.get_data()
        expected = hmac.new(secret_of().encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Authgear-Body-Signature", ""), expected):
            return jsonify(error="bad signature"), 401
        event = json.loads(raw)
        app.received.append(event)
        return jsonify(answer(event))

    return app


def test_send_event_to_a_flask_app_is_signed_and_shaped_like_authgears(server):
    app = webhook_app(lambda: server.webhook_secret)
    answer = server.send_event(app, "user.created", path="/hook")
    assert (answer.status, answer.json) == (200, {"is_allowed": True})
    assert answer.headers["Content-Type"] == "application/json"
    (event,) = app.received
    assert set(event) == {"id", "seq", "type", "payload", "context"}
    assert isinstance(event["seq"], int) and event["id"] == f"{event['seq']:016x}"  # Authgear's id, not a UUID
    assert event["type"] == "user.created"
    user = event["payload"]["user"]
    assert set(USER_FIELDS) <= set(user) and user["id"] == "user-1"
    context = event["context"]
    assert set(CONTEXT_FIELDS) <= set(context) and "oauth" not in context  # oauth only with a state
    assert abs(context["timestamp"] - time.time()) < 60
    assert (context["app_id"], context["triggered_by"], context["user_id"]) == (server.app_id, "user", "user-1")
    assert isinstance(context["audit_context"], dict) and context["preferred_languages"] == []


def test_an_event_without_a_user_has_a_null_user_id(server):
    app = webhook_app(lambda: server.webhook_secret)
    server.send_event(app, "authentication.pre_initialize", path="/hook")
    server.send_event(app, "usage.alert.triggered", path="/hook")
    server.send_event(
        app, "user.created", path="/hook", context={"triggered_by": "site_admin", "oauth": {"state": "s"}}
    )
    pre, usage, created = app.received
    assert pre["context"]["user_id"] is None and usage["context"]["user_id"] is None
    assert (created["context"]["triggered_by"], created["context"]["oauth"]) == ("site_admin", {"state": "s"})


def test_the_signature_is_lowercase_hex_hmac_of_the_exact_body(server):
    seen = {}

    def wsgi(environ, start_response):
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["signature"] = environ["HTTP_X_AUTHGEAR_BODY_SIGNATURE"]
        start_response("204 No Content", [])
        return []

    server.webhook_secret = "the-portal-secret"
    assert server.send_event(wsgi, "user.deleted").status == 204
    assert seen["signature"] == hmac.new(b"the-portal-secret", seen["body"], hashlib.sha256).hexdigest()
    assert seen["signature"] == seen["signature"].lower() and len(seen["signature"]) == 64
    app = webhook_app(lambda: "the-portal-secret")
    assert server.send_event(app, "user.deleted", path="/hook", secret="another").status == 401
    assert app.received == []


def test_send_event_over_http_with_chosen_id_seq_timestamp_and_context(server):
    app = webhook_app(lambda: server.webhook_secret)
    with AppServer(app) as http:
        url = f"http://127.0.0.1:{http.port}/hook"
        for _ in range(2):  # a replay: the same id and timestamp again
            answer = server.send_event(
                url,
                "user.profile.updated",
                {"user": {"id": "zoe"}},
                {"triggered_by": "admin_api"},
                id="11111111-2222-3333-4444-555555555555",
                seq=42,
                timestamp=1700000000,
            )
            assert answer.status == 200 and answer.json == {"is_allowed": True}
    first, second = app.received
    assert first == second
    assert (first["id"], first["seq"], first["payload"]) == (
        "11111111-2222-3333-4444-555555555555",
        42,
        {"user": {"id": "zoe"}},
    )
    assert first["context"]["timestamp"] == 1700000000
    assert (first["context"]["triggered_by"], first["context"]["user_id"]) == ("admin_api", "zoe")


def test_sequence_numbers_grow(server):
    app = webhook_app(lambda: server.webhook_secret)
    for _ in range(3):
        server.send_event(app, "user.disabled", path="/hook")
    seqs = [event["seq"] for event in app.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_the_jwt_sample_carries_every_claim_of_a_minted_token(server):
    sample = events.sample_payload("oidc.jwt.pre_create", "ivy")["jwt"]["payload"]
    minted = server.claims_for("ivy")
    assert set(sample) == set(minted) and sample["sub"] == "ivy"
    assert sample[CLAIM_ROLES] == minted[CLAIM_ROLES] and sample["amr"] == minted["amr"]
    assert len(sample["jti"]) == len(minted["jti"]) == 64  # the SHA-256 hex of a token, as Authgear's


def test_sessions_and_authentication_contexts_have_authgears_fields():
    session = events.sample_payload("user.reauthenticated")["session"]
    assert {"id", "type", "amr", "lastAccessedAt", "createdByIP", "clientID", "displayName"} <= set(session)
    context = events.sample_payload("authentication.pre_authenticated")["authentication_context"]
    assert {"user", "asserted_identifications", "asserted_authentications", "amr", "authentication_flow"} <= set(
        context
    )
    (identification,) = context["asserted_identifications"]
    assert set(identification) == {"identification", "identity", "id_token"}
    assert context["asserted_authentications"][0]["authenticator"]["kind"] == "primary"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_documented_event_type_has_a_sample_payload(server, event_type):
    payload = events.sample_payload(event_type, "ivy")
    users = [payload.get("user"), payload.get("authentication_context", {}).get("user")]
    for user in filter(None, users):
        assert set(USER_FIELDS) <= set(user) and user["id"] == "ivy"
    app = webhook_app(lambda: server.webhook_secret)
    assert server.send_event(app, event_type, path="/hook").status == 200
    assert app.received[0]["payload"] == events.sample_payload(event_type)


def test_event_types_are_authgears():
    assert len(BLOCKING_EVENTS) == 9 and "oidc.jwt.pre_create" in BLOCKING_EVENTS
    assert "identity.username.verified" not in NON_BLOCKING_EVENTS
    assert "identity.biometric.disabled" in NON_BLOCKING_EVENTS
    new = ("user.reauthenticated", "user.anonymization_scheduled", "user.anonymization_unscheduled")
    assert {*new, "user.anonymized", "usage.alert.triggered"} <= set(NON_BLOCKING_EVENTS)
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES)) == 9 + 31
    with pytest.raises(ValueError, match="unknown event type"):
        events.sample_payload("user.exploded")


# -- the oidc.jwt.pre_create hook --------------------------------------------------------------------------------


@pytest.fixture
def hooked(server):
    """The server with its JWT hook cleared again after the test."""
    yield server
    server.jwt_hook = None


def adding_claim(event):
    return {
        "is_allowed": True,
        "mutations": {"jwt": {"payload": {**event["payload"]["jwt"]["payload"], "tier": "gold"}}},
    }


def test_a_jwt_hook_adds_claims_to_minted_tokens(hooked):
    app = webhook_app(lambda: hooked.webhook_secret, adding_claim)
    hooked.jwt_hook, hooked.jwt_hook_path = app, "/hook"
    token = hooked.issue_token("kim", roles=["admin"])
    claims = Verifier(Settings(**hooked.settings())).verify_token(token).claims
    assert claims["tier"] == "gold" and claims["sub"] == "kim"
    (event,) = app.received
    assert event["type"] == "oidc.jwt.pre_create"
    assert event["payload"]["jwt"]["payload"]["jti"] == claims["jti"]
    assert (event["payload"]["user"]["id"], event["payload"]["user"]["roles"]) == ("kim", ["admin"])


def test_a_jwt_hook_over_http(hooked):
    app = webhook_app(lambda: hooked.webhook_secret, adding_claim)
    with AppServer(app) as http:
        hooked.jwt_hook = f"http://127.0.0.1:{http.port}/hook"
        token = hooked.issue_token("lee")
    assert split_token(token)[1]["tier"] == "gold"


def test_a_jwt_hook_without_mutations_leaves_the_token(hooked):
    hooked.jwt_hook, hooked.jwt_hook_path = webhook_app(lambda: hooked.webhook_secret), "/hook"
    claims = split_token(hooked.issue_token("mo"))[1]
    assert "tier" not in claims and claims["sub"] == "mo"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            lambda e: {"is_allowed": False, "reason": "blocked", "title": "No"},
            "refused: No: blocked",
            id="refused",
        ),
        pytest.param(
            lambda e: {
                "is_allowed": True,
                "mutations": {"jwt": {"payload": {**e["payload"]["jwt"]["payload"], "sub": "root"}}},
            },
            r"changes \['sub'\]",
            id="changes-sub",
        ),
        pytest.param(
            lambda e: {
                "is_allowed": True,
                "mutations": {"jwt": {"payload": {"sub": e["payload"]["jwt"]["payload"]["sub"]}}},
            },
            r"drops \['amr', 'aud'",
            id="drops-fields",
        ),
        pytest.param(
            lambda e: {"is_allowed": True, "mutations": {"jwt": {"payload": []}}},
            "must be a JSON object",
            id="not-an-object",
        ),
        pytest.param(lambda e: {"allowed": True}, "must carry is_allowed", id="no-is-allowed"),
        pytest.param(lambda e: {"is_allowed": True, "mutations": {"jwt": []}}, "must be a JSON object", id="jwt-list"),
        pytest.param(
            lambda e: {"is_allowed": True, "mutations": "all"}, "must be a JSON object", id="mutations-string"
        ),
        pytest.param(
            lambda e: {"is_allowed": True, "constraints": {"amr": ["mfa"]}},
            "Authgear refuses the answer of the oidc.jwt.pre_create hook: .* does not accept constraints",
            id="constraints-on-a-token",
        ),
        pytest.param(
            lambda e: {"is_allowed": False, "reason": "no", "title": "No", "code": 3},
            "a refusal carries only title and reason, not code",
            id="refusal-with-extra-key",
        ),
    ],
)
def test_a_jwt_hook_that_refuses_or_rewrites_fails_minting(hooked, answer, message):
    hooked.jwt_hook, hooked.jwt_hook_path = webhook_app(lambda: hooked.webhook_secret, answer), "/hook"
    with pytest.raises(HookError, match=message):
        hooked.issue_token("ned")


def test_a_jwt_hook_that_rejects_the_signature_fails_minting(hooked):
    hooked.jwt_hook, hooked.jwt_hook_path = webhook_app(lambda: "the-app-has-another-secret"), "/hook"
    with pytest.raises(HookError, match="HTTP 401"):
        hooked.issue_token("ola")


def test_the_jwt_hook_has_the_projects_sync_hook_timeout(hooked):
    release = threading.Event()

    def stuck(event):
        release.wait(30)  # answers only once the test is over
        return adding_claim(event)

    app = webhook_app(lambda: hooked.webhook_secret, stuck)
    assert (hooked.sync_hook_timeout, hooked.sync_hook_total_timeout) == (5.0, 10.0)  # Authgear's defaults
    try:
        with AppServer(app) as http:
            hooked.jwt_hook = f"http://127.0.0.1:{http.port}/hook"
            hooked.sync_hook_timeout = 0.3
            with pytest.raises(HookError, match="could not be reached: ReadTimeout"):
                hooked.issue_token("quin")
            release.set()
    finally:
        release.set()
        hooked.sync_hook_timeout = 5.0


def test_a_blocking_event_waits_as_long_as_the_project_lets_its_hook_take(server):
    release = threading.Event()

    def slow(event):
        release.wait(3)  # longer than the project's budget, shorter than Authgear's default of 5 s
        return {"is_allowed": True}

    app = webhook_app(lambda: server.webhook_secret, slow)
    try:
        with AppServer(app) as http:
            server.sync_hook_total_timeout = 0.3  # the event's budget bounds its one hook too
            with pytest.raises(requests.ReadTimeout):
                server.send_event(f"http://127.0.0.1:{http.port}/hook", "user.pre_create")
            release.set()
    finally:
        release.set()
        server.sync_hook_total_timeout = 10.0


def test_an_unreachable_jwt_hook_fails_minting(hooked):
    hooked.jwt_hook = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(HookError, match="could not be reached: ConnectionError"):
        hooked.issue_token("pam")
