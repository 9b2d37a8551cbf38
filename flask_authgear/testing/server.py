"""A local Authgear-compatible server: discovery, JWKS, the resolver and the token endpoint on 127.0.0.1.

It mints tokens shaped exactly like Authgear's (``typ: at+jwt``, the same claims), keeps sessions that the
resolver answers for (bearer and cookie) by Authgear's rules, serves the client-credentials grant to the
machine clients registered on it (the only grant its token endpoint serves), sends signed webhook events to the
app (and asks its ``oidc.jwt.pre_create`` hook before minting, when one is set), and can be told to fail in the
ways a real network fails, so that tests and the demo exercise the real HTTP path without internet access.

What it knows (keys, sessions, users, machine clients) is its model, ``testing/model.py``; its fault switches are
in ``testing/faults.py``; its webhooks in ``testing/events.py``; this module runs it, mints its tokens and answers
its routes. It knows nothing of the library's adapters:
pointing an app at it is ``testing/client.py``'s job.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .events import EventSender, access_token_claims
from .faults import FaultSwitches, json_response
from .model import ACCESS_TOKEN_LIFETIME, Project, TestSession

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["AuthgearTestServer", "TestSession"]


class AuthgearTestServer(Project, FaultSwitches, EventSender):
    """An in-process Authgear look-alike, served by Werkzeug in a thread on a random loopback port.

    Use it as a context manager (``with AuthgearTestServer() as server:``) or call :meth:`start` and
    :meth:`stop`. ``server.endpoint`` is the origin to configure as ``AUTHGEAR_ENDPOINT``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        Project.__init__(self)
        FaultSwitches.__init__(self)
        EventSender.__init__(self)
        self.host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------------------------

    def start(self) -> AuthgearTestServer:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self._port, self.wsgi_app, threaded=True, request_handler=_QuietHandler)
        self._port = self._server.port
        # A short poll interval makes stop() return in tens of milliseconds instead of half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="authgear-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AuthgearTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """Context manager: the port refuses connections inside the block, then the server comes back."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def reset(self) -> None:
        """Forget sessions, revocations, failures and counters; keep the keys (apps may have cached them)."""
        self._forget()
        self.heal()
        self.reset_hits()

    @property
    def port(self) -> int:
        if self._server is None and self._port == 0:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """The project origin, also the ``iss`` and default ``aud`` of the tokens minted here."""
        return f"http://{self.host_header}"

    @property
    def host_header(self) -> str:
        return f"{self.host}:{self.port}"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Keyword settings that point the library at this server (also usable as ``AUTHGEAR_*`` config)."""
        return {"endpoint": self.endpoint, "http_timeout": 2.0, **overrides}

    def flask_config(self, **overrides: Any) -> dict[str, Any]:
        """The same settings as ``AUTHGEAR_*`` keys for ``app.config.update(...)``."""
        return {f"AUTHGEAR_{k.upper()}": v for k, v in self.settings(**overrides).items()}

    # -- tokens --------------------------------------------------------------------------------------------------

    def claims_for(self, sub: str = "user-1", **claims: Any) -> dict[str, Any]:
        """The claims of an Authgear access token, as :meth:`issue_token` would sign them.

        Takes the keyword arguments of :func:`~flask_authgear.testing.events.access_token_claims` (``roles``,
        ``is_verified``, ``is_anonymous``, ``can_reauthenticate``, ``expires_in``, ``amr``, ``auth_time``); extra
        keywords become claims.
        """
        return access_token_claims(sub, issuer=self.endpoint, client_id=self.client_id, **claims)

    def issue_token(
        self, sub: str = "user-1", *, key: RSAKey | None = None, header: Mapping[str, Any] | None = None, **claims: Any
    ) -> str:
        """Mint an Authgear-shaped JWT access token; a negative ``expires_in`` gives an expired one.

        Accepts the keyword arguments of :meth:`claims_for`; extra keywords become claims.
        """
        body = self.claims_for(sub, **claims)
        if self.jwt_hook is not None:
            body = self._jwt_pre_create(self.jwt_hook, body)
        return self._sign(body, key, header)

    def machine_token(
        self,
        client_id: str = "m2m-client",
        *,
        resource: str,
        scopes: Iterable[str] = (),
        expires_in: float | None = None,
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Mint the access token Authgear gives a machine for ``resource``, signed like every token here; extra
        keywords become claims (to build tokens that only claim the shape).

        Its claims come in the order Authgear sets them (``EncodeClientAccessToken``): ``jti``, ``iss``, ``aud``
        (the resource, as a list of one), ``iat``, ``exp``, ``client_id``, ``scope`` and ``sub``
        (``client_id_<client_id>``); none of the user claims. Authgear asks no ``oidc.jwt.pre_create`` hook for
        these tokens, and keeps no session for them: the resolver never vouches for one. The token endpoint checks
        the client, its secret and its scopes; this method mints for any ``client_id``.

        Raises ``ValueError`` for a resource Authgear's token endpoint refuses (empty, or beginning with the
        endpoint).
        """
        if not resource:
            raise ValueError("resource is required")
        if resource.startswith(self.endpoint):
            raise ValueError("resource URI must not be a prefixed by authgear endpoint")
        now = int(time.time())
        body = {
            "jti": secrets.token_hex(32),  # as Authgear's: the SHA-256 hex of an opaque token, 64 digits
            "iss": self.endpoint,
            "aud": [resource],
            "iat": now,
            "exp": int(now + (ACCESS_TOKEN_LIFETIME if expires_in is None else expires_in)),
            "client_id": client_id,
            "scope": " ".join(scopes),
            "sub": f"client_id_{client_id}",
            **claims,
        }
        return self._sign(body, key, header)

    def _sign(self, claims: Mapping[str, Any], key: RSAKey | None, header: Mapping[str, Any] | None) -> str:
        signing = key or self.signing_key
        head: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid, **(header or {})}
        return jwt.encode(head, dict(claims), signing, algorithms=[head["alg"]])

    # -- the WSGI routes -----------------------------------------------------------------------------------------

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            response = self._answer("discovery", self._discovery, request)
        elif path == "/oauth2/jwks":
            response = self._answer("jwks", lambda _: json_response(self.jwks()), request)  # no Cache-Control
        elif path in ("/_resolver/resolve", "/resolve"):
            response = self._answer("resolver", self._resolve, request)
        elif path == "/oauth2/token":
            response = self._answer("token", self._token, request)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def _discovery(self, request: Request) -> Response:
        base = self.endpoint
        return json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/token",
                "userinfo_endpoint": f"{base}/oauth2/userinfo",
                "end_session_endpoint": f"{base}/oauth2/end_session",
                "revocation_endpoint": f"{base}/oauth2/revoke",
                "jwks_uri": f"{base}/oauth2/jwks",
                "scopes_supported": ["openid", "offline_access"],
                "response_types_supported": ["code", "none"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def _resolve(self, request: Request) -> Response:
        """Authgear's resolver (``pkg/lib/session/middleware.go``, ``pkg/lib/oauth/resolver.go``).

        The bearer token, then the ``app_session`` and ``app_access_token`` cookies, then the IdP ``session``
        cookie: the first valid one wins, and an invalid one does not end the lookup. Only an invalid ``session``
        cookie makes the answer ``Session-Valid: false`` (with a ``Set-Cookie`` clearing that cookie alone); so
        does a session found for a user who is disabled or gone. Otherwise, no credentials or none valid: no
        ``X-Authgear-*`` header at all.
        """
        if request.method not in ("GET", "HEAD"):
            return Response("", status=405)
        if request.host != self.host_header:
            return Response("", status=404)  # Authgear picks the project by Host
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        cookies = request.cookies
        session = (
            self._access_token_session(bearer if scheme.lower() == "bearer" else None)
            or self._session_by(cookies.get("app_session"), "app_session_token")
            or self._access_token_session(cookies.get("app_access_token"))
            or self._session_by(cookies.get("session"), "cookie_value")
        )
        response = Response("", status=200)
        if session is not None and not self._is_disabled(session.user_id):
            _valid_headers(response, session)
        elif session is not None or "session" in cookies:
            response.headers["X-Authgear-Session-Valid"] = "false"
            if "session" in cookies:
                response.set_cookie("session", "", max_age=0, path="/", httponly=True)
        return response

    def _access_token_session(self, token: str | None) -> TestSession | None:
        """The session of an opaque access token, or of a JWT access token this server issued."""
        return self._session_by(token, "token") or (self._jwt_session(token, self.endpoint) if token else None)

    def _token(self, request: Request) -> Response:
        """Authgear's token endpoint for the client-credentials grant (``pkg/lib/oauth/handler/handler_token.go``):
        the same checks in the same order, the same error codes and descriptions, the same answer."""
        if request.method != "POST":
            return Response("", status=405)
        form = request.form  # an application/x-www-form-urlencoded body; the query string counts too, after it

        def param(name: str) -> str:
            values = form.getlist(name) or request.args.getlist(name)
            return values[0] if values else ""

        client_id, client_secret = param("client_id"), param("client_secret")
        if not client_id and not client_secret and request.authorization and request.authorization.type == "basic":
            # RFC 6749 appendix B: Basic credentials are form-urlencoded first.
            client_id = unquote_plus(request.authorization.username or "")
            client_secret = unquote_plus(request.authorization.password or "")
        client, resources = self._machine_client(client_id)
        if client is None and client_id != self.client_id:
            return _oauth_error("invalid_client", "invalid client ID")
        grant_type, resource = param("grant_type"), param("resource")
        if grant_type != "client_credentials":
            return _oauth_error("unsupported_grant_type", "grant type is not supported")
        if not resource:
            return _oauth_error("invalid_target", "resource is required")
        if not client_secret:
            return _oauth_error("invalid_client", "client secret is required")
        if client is None:  # the user-facing client: a public one, not allowed this grant
            return _oauth_error("unauthorized_client", "grant type is not allowed for this client")
        if not hmac.compare_digest(client_secret.encode(), client.client_secret.encode()):
            return _oauth_error("invalid_request", "invalid client secret")
        if resource.startswith(self.endpoint):
            return _oauth_error("invalid_target", "resource URI must not be a prefixed by authgear endpoint")
        if resource not in resources:
            return _oauth_error("invalid_target", "resource not found")
        if resource not in client.resources:
            return _oauth_error("invalid_target", "client is not associated with the resource")
        allowed = client.resources[resource]
        requested = param("scope")
        scopes = requested.split(" ") if requested else allowed
        for scope in scopes:
            if scope not in allowed:
                return _oauth_error("invalid_scope", f"specified scope is not allowed: {scope}")
        token = self.machine_token(client.client_id, resource=resource, scopes=scopes)
        lifetime, scope = ACCESS_TOKEN_LIFETIME, " ".join(scopes)
        answer = {"access_token": token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"}
        return _no_store(json_response(answer))


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _valid_headers(response: Response, session: TestSession) -> None:
    headers = response.headers
    headers["X-Authgear-Session-Valid"] = "true"
    headers["X-Authgear-User-Id"] = session.user_id
    headers["X-Authgear-User-Anonymous"] = str(session.is_anonymous).lower()
    headers["X-Authgear-User-Verified"] = str(session.is_verified).lower()
    headers["X-Authgear-User-Can-Reauthenticate"] = str(session.can_reauthenticate).lower()
    if session.roles:
        headers["X-Authgear-User-Roles"] = ",".join(session.roles)
    headers["X-Authgear-Session-Amr"] = " ".join(session.amr)
    if session.authenticated_at is not None:
        headers["X-Authgear-Session-Authenticated-At"] = str(session.authenticated_at)


def _oauth_error(error: str, description: str) -> Response:
    """An error of Authgear's token endpoint: 400 (its default) with ``error`` and ``error_description``."""
    return _no_store(json_response({"error": error, "error_description": description}, 400))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
