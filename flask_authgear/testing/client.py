"""Apps against the local server: a Flask test client signed in as an Authgear user, in the style of
flask-login's ``FlaskLoginClient``, and helpers that point a Flask app at an :class:`AuthgearTestServer`.

The server itself knows nothing of Flask or of the adapters; everything app-side lives here.

.. code-block:: python

    app.test_client_class = AuthgearClient
    configure(app, server)                 # before Authgear(app)
    client = app.test_client(user="alice", roles=["admin"])
    assert client.get("/admin").status_code == 200

The token is a real one, minted by the local :class:`AuthgearTestServer` and verified by the app over HTTP,
so the test exercises exactly what production runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from ..errors import ConfigurationError
from ..flask.extension import EXTENSION_KEY, app_settings
from ..user import AuthgearUser
from .model import TestSession
from .server import AuthgearTestServer

__all__ = ["AuthgearClient", "client_for", "configure"]

#: The cookies Authgear's resolver reads: a client that logs out sends none of them.
_SESSION_COOKIES = ("app_session", "app_access_token", "session")
#: Where :func:`configure` records the server in ``app.extensions``.
_TEST_SERVER_EXTENSION = "authgear.test_server"


def configure(app: Flask, server: AuthgearTestServer, **overrides: Any) -> Flask:
    """Point a Flask app at ``server`` (its ``AUTHGEAR_*`` config); call it before ``Authgear(app)``.

    The app also remembers the server, so ``AuthgearClient`` test clients can mint tokens for it.
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError("configure the app before Authgear(app) / init_app(app): settings are read once")
    app.config.update(server.flask_config(**overrides))
    app.extensions[_TEST_SERVER_EXTENSION] = server
    return app


class AuthgearClient(FlaskClient):
    """A test client that sends ``Authorization: Bearer <token>`` for a chosen user on every request.

    Keyword arguments (given to ``app.test_client(...)`` once ``app.test_client_class = AuthgearClient``):

    * ``user``: a user id or an :class:`AuthgearUser` to sign in as; its roles and flags go into the token;
    * ``machine``: a client id to sign in as a machine instead, with ``resource=`` (default: the app's first
      audience that is not the endpoint) and ``scopes=[...]``, as :meth:`AuthgearTestServer.machine_token`;
    * ``token``: send this exact token instead (an expired or forged one, for instance);
    * ``server``: the :class:`AuthgearTestServer` that mints tokens; default the one given to :func:`configure`
      for this app, else the one a pytest fixture holds at the app's endpoint;
    * any other keyword goes to :meth:`AuthgearTestServer.issue_token` (``roles=``, ``is_verified=``,
      ``expires_in=``, ``amr=``, extra claims).
    """

    def __init__(
        self,
        *args: Any,
        user: str | AuthgearUser | None = None,
        token: str | None = None,
        server: AuthgearTestServer | None = None,
        use_cookies: bool = True,
        machine: str | None = None,
        **claims: Any,
    ) -> None:
        super().__init__(*args, use_cookies=use_cookies)
        self._server = server
        #: The token this client sends, or None.
        self.token: str | None = None
        if token is not None:
            self.use_token(token)
        elif machine is not None:
            self.login_machine(machine, **claims)
        elif user is not None:
            self.login(user, **claims)
        elif claims:
            raise TypeError("token claims were given without a user")

    @property
    def server(self) -> AuthgearTestServer:
        """The server that mints this client's tokens: the one given, else the one the app is configured for."""
        app = self.application
        server = self._server or app.extensions.get(_TEST_SERVER_EXTENSION) or _fixture_server(app)
        if server is None:
            raise RuntimeError(
                "no AuthgearTestServer for this app's AUTHGEAR_ENDPOINT: configure the app with "
                "configure(app, server), or with the flask_config() of the authgear_server fixture, "
                "or pass server=..."
            )
        return server

    def login(self, user: str | AuthgearUser = "user-1", **claims: Any) -> str:
        """Mint a token for ``user`` and send it from now on; return the token."""
        if isinstance(user, AuthgearUser):
            defaults = {
                "roles": sorted(user.roles),
                "is_verified": user.is_verified,
                "is_anonymous": user.is_anonymous,
                "can_reauthenticate": user.can_reauthenticate,
                "amr": list(user.amr) or None,
                "auth_time": user.authenticated_at.timestamp() if user.authenticated_at else None,  # None: now
            }
            claims = {**defaults, **claims}
            user = user.id
        token = self.server.issue_token(user, **claims)
        self.use_token(token)
        return token

    def login_machine(
        self, client_id: str = "m2m-client", *, resource: str | None = None, scopes: Iterable[str] = (), **claims: Any
    ) -> str:
        """Mint a machine's token (client credentials) and send it from now on; return the token.

        ``resource`` defaults to the app's first accepted audience that is not the Authgear endpoint, the API
        resource a real machine would ask its token for.
        """
        if resource is None:
            settings = app_settings(self.application)
            resources = [aud for aud in settings.audience if aud not in (settings.endpoint, settings.issuer)]
            if not resources:
                raise RuntimeError(
                    "the app accepts no API resource audience: add the resource to AUTHGEAR_AUDIENCE, or pass resource="
                )
            resource = resources[0]
        token = self.server.machine_token(client_id, resource=resource, scopes=scopes, **claims)
        self.use_token(token)
        return token

    def use_token(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` with every request."""
        self.token = token
        self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def use_session(self, session: TestSession, *, cookie: bool = False) -> None:
        """Authenticate as a resolver session: its opaque bearer token, or its ``session`` cookie with
        ``cookie=True``."""
        if cookie:
            self.logout()
            self.set_cookie("session", session.cookie_value)
        else:
            self.use_token(session.token)

    def logout(self) -> None:
        """Send no credentials any more (neither the token nor a session cookie)."""
        self.token = None
        self.environ_base.pop("HTTP_AUTHORIZATION", None)
        for name in _SESSION_COOKIES:
            self.delete_cookie(name)


def _fixture_server(app: Flask) -> AuthgearTestServer | None:
    """The server a pytest fixture of this test holds at the app's endpoint, when the plugin is loaded."""
    plugin = sys.modules.get("flask_authgear.pytest_plugin")
    try:
        return None if plugin is None else plugin.fixture_server(app_settings(app).endpoint)
    except ConfigurationError:  # the app has no endpoint
        return None


def client_for(
    app: Flask, server: AuthgearTestServer, user: str | AuthgearUser | None = "user-1", **claims: Any
) -> AuthgearClient:
    """A test client for ``app`` signed in as ``user`` with tokens from ``server`` (no ``test_client_class`` needed).

    ``roles=`` and other keywords go into the token (see :meth:`AuthgearTestServer.issue_token`).
    """
    return AuthgearClient(app, app.response_class, server=server, user=user, **claims)
