"""A Flask test client that is signed in as an Authgear user, in the style of flask-login's ``FlaskLoginClient``.

.. code-block:: python

    app.test_client_class = AuthgearClient
    server.configure(app)                  # before Authgear(app)
    client = app.test_client(user="alice", roles=["admin"])
    assert client.get("/admin").status_code == 200

The token is a real one, minted by the local :class:`AuthgearTestServer` and verified by the app over HTTP,
so the test exercises exactly what production runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from ..config import Settings
from ..errors import ConfigurationError
from ..user import AuthgearUser
from .server import TEST_SERVER_EXTENSION, AuthgearTestServer, TestSession, running_server


class AuthgearClient(FlaskClient):
    """A test client that sends ``Authorization: Bearer <token>`` for a chosen user on every request.

    Keyword arguments (given to ``app.test_client(...)`` once ``app.test_client_class = AuthgearClient``):

    * ``user``: a user id or an :class:`AuthgearUser` to sign in as; its roles and flags go into the token;
    * ``token``: send this exact token instead (an expired or forged one, for instance);
    * ``server``: the :class:`AuthgearTestServer` that mints tokens; default the one given to
      :meth:`AuthgearTestServer.configure` for this app;
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
        **claims: Any,
    ) -> None:
        super().__init__(*args, use_cookies=use_cookies)
        self._server = server
        #: The token this client sends, or None.
        self.token: str | None = None
        if token is not None:
            self.use_token(token)
        elif user is not None:
            self.login(user, **claims)
        elif claims:
            raise TypeError("token claims were given without a user")

    @property
    def server(self) -> AuthgearTestServer:
        """The server that mints this client's tokens: the one given, else the one the app is configured for."""
        app = self.application
        server = self._server or app.extensions.get(TEST_SERVER_EXTENSION)
        if server is None:
            endpoint = _app_endpoint(app)
            server = running_server(endpoint) if endpoint else None
        if not isinstance(server, AuthgearTestServer):
            raise RuntimeError(
                "no running AuthgearTestServer for this app's AUTHGEAR_ENDPOINT: configure the app with "
                "server.configure(app) or server.flask_config(), or pass server=..."
            )
        return server

    def login(self, user: str | AuthgearUser = "user-1", **claims: Any) -> str:
        """Mint a token for ``user`` and send it from now on; return the token."""
        if isinstance(user, AuthgearUser):
            defaults: dict[str, Any] = {
                "roles": sorted(user.roles),
                "is_verified": user.is_verified,
                "is_anonymous": user.is_anonymous,
                "can_reauthenticate": user.can_reauthenticate,
                "amr": list(user.amr) or None,
            }
            if user.authenticated_at is not None:
                defaults["auth_time"] = user.authenticated_at.timestamp()
            claims = {**defaults, **claims}
            user = user.id
        token = self.server.issue_token(user, **claims)
        self.use_token(token)
        return token

    def use_token(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` with every request."""
        self.token = token
        self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def use_session(self, session: TestSession, *, cookie: bool = False, cookie_name: str = "session") -> None:
        """Authenticate as a resolver session: its opaque bearer token, or its cookie with ``cookie=True``."""
        if cookie:
            self.logout()
            self.set_cookie(cookie_name, session.cookie_value)
        else:
            self.use_token(session.token)

    def logout(self) -> None:
        """Send no credentials any more (neither the token nor a session cookie)."""
        self.token = None
        self.environ_base.pop("HTTP_AUTHORIZATION", None)
        for name in ("app_session", "app_access_token", "session"):
            self.delete_cookie(name)


def _app_endpoint(app: Flask) -> str | None:
    """The endpoint the app verifies tokens against: the extension's settings, else its config."""
    ext = app.extensions.get("authgear")
    if ext is not None:
        with app.app_context():
            settings = getattr(ext, "settings", None)
        if isinstance(settings, Settings):
            return settings.endpoint
    try:
        return Settings.from_mapping(app.config).endpoint
    except ConfigurationError:
        return None


def client_for(
    app: Flask,
    server: AuthgearTestServer,
    user: str | AuthgearUser | None = "user-1",
    *,
    roles: Iterable[str] | None = None,
    **claims: Any,
) -> AuthgearClient:
    """A test client for ``app`` signed in as ``user`` with tokens from ``server`` (no ``test_client_class`` needed).

    ``roles`` and other keywords go into the token (see :meth:`AuthgearTestServer.issue_token`).
    """
    if roles is not None:
        claims["roles"] = list(roles)
    return AuthgearClient(app, app.response_class, server=server, user=user, **claims)
