"""A test written the way an application's developer writes one: only the public kit and the pytest fixture.

The app below stands for the user's own code; nothing here reaches into the library's internals.
"""

import pytest
from flask import Flask, jsonify

from flask_authgear import Authgear, current_user, require_auth
from flask_authgear.testing import AuthgearClient


def create_app(config=None):
    """The user's application factory."""
    app = Flask(__name__)
    app.config.update(config or {})
    Authgear(app)

    @app.get("/")
    def index():
        return jsonify(message="hello")

    @app.get("/profile")
    @require_auth
    def profile():
        return jsonify(id=current_user.id, roles=sorted(current_user.roles))

    @app.delete("/users/<user_id>")
    @require_auth(roles=["admin"], verified=True)
    def delete_user(user_id):
        return jsonify(deleted=user_id)

    return app


@pytest.fixture
def app(authgear_server):
    app = create_app(authgear_server.flask_config())
    app.test_client_class = AuthgearClient
    return app


def test_public_page_needs_no_token(app):
    assert app.test_client().get("/").status_code == 200


def test_profile_requires_a_token(app):
    response = app.test_client().get("/profile")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authgear"'


def test_profile_shows_the_signed_in_user(app):
    client = app.test_client(user="alice", roles=["editor"])
    assert client.get("/profile").get_json() == {"id": "alice", "roles": ["editor"]}


def test_only_verified_admins_delete_users(app):
    assert app.test_client(user="bob").delete("/users/7").status_code == 403
    assert app.test_client(user="carol", roles=["admin"], is_verified=False).delete("/users/7").status_code == 403
    response = app.test_client(user="dave", roles=["admin"]).delete("/users/7")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": "7"}


def test_an_expired_token_is_refused(app, authgear_server):
    client = app.test_client(token=authgear_server.issue_token("erin", expires_in=-300))
    response = client.get("/profile")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_authgear_outage_answers_503(app, authgear_server):
    client = app.test_client(user="frank")
    with authgear_server.failing("jwks", "500"):
        response = client.get("/profile")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


def test_an_outage_after_keys_are_cached_keeps_users_signed_in(app, authgear_server):
    client = app.test_client(user="gina")
    assert client.get("/profile").status_code == 200
    with authgear_server.failing("jwks", "500"), authgear_server.failing("discovery", "500"):
        assert client.get("/profile").status_code == 200
