"""A local Authgear-compatible server: discovery, JWKS, the resolver and the token endpoint on 127.0.0.1.

It mints tokens shaped exactly like Authgear's (``typ: at+jwt``, the same claims), keeps sessions that the
resolver answers for (bearer and cookie) by Authgear's rules, serves the client-credentials grant to the
machine clients registered on it (the only grant its token endpoint serves), sends signed webhook events to the
app (and asks its ``oidc.jwt.pre_create`` hook before minting, when one is set), and can be told to fail in the
ways a real network fails, so that tests and the demo exercise the real HTTP path without internet access. It
knows nothing of the library's adapters: pointing an app at it is ``testing/client.py``'s job.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from ..core import json as strict_json
from ..core.jose import b64url_decode
from ..user import CLAIM_CAN_REAUTHENTICATE, CLAIM_IS_ANONYMOUS, CLAIM_IS_VERIFIED, CLAIM_ROLES
from ..webhooks.catalogue import SYNC_HOOK_TIMEOUT, SYNC_HOOK_TOTAL_TIMEOUT
from .events import (
    EventResponse,
    EventTarget,
    HookError,
    access_token_claims,
    apply_jwt_mutations,
    sample_identity,
    sample_user,
    send_signed_event,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "FAILURES",
    "SESSION_COOKIES",
    "AuthgearTestServer",
    "MachineClient",
    "TestSession",
    "json_response",
    "new_signing_key",
]

#: Cookie names Authgear's resolver reads, in order.
SESSION_COOKIES = ("app_session", "app_access_token", "session")
#: What a ``fail(..)`` switch can make an endpoint do.
FAILURES = (
    "500",
    "html",
    "empty",
    "bad_keys",
    "garbage",
    "oversized",
    "slow",
    "drip",
    "redirect",
    "invalid_answer",
)
_TARGETS = ("discovery", "jwks", "resolver", "token")
#: Authgear's default access-token lifetime, in seconds (``DefaultAccessTokenLifetime``).
_ACCESS_TOKEN_LIFETIME = 1800
#: RFC 6749 section 3.3, as Authgear checks the scopes of an API resource (``FormatScopeToken``).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass
class TestSession:
    """A session the resolver accepts, through a bearer token or a cookie."""

    __test__ = False  # not a pytest test class

    id: str
    user_id: str
    token: str
    cookie_value: str
    roles: tuple[str, ...] = ()
    is_anonymous: bool = False
    is_verified: bool = True
    can_reauthenticate: bool = True
    amr: tuple[str, ...] = ("pwd",)
    authenticated_at: int | None = None
    revoked: bool = False
    #: The ``app_session`` cookie value of this session (Authgear's app session token).
    app_session_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value carrying this session's opaque access token."""
        return f"Bearer {self.token}"

    @property
    def cookie(self) -> str:
        """A ``Cookie`` header value carrying this session."""
        return f"session={self.cookie_value}"


@dataclass(frozen=True)
class MachineClient:
    """A machine-to-machine application registered on the server: it gets tokens by the client-credentials grant
    for the API resources it is associated with, and only with the scopes it was granted on each."""

    client_id: str
    client_secret: str
    #: Resource identifier -> the scopes granted to this client on it.
    resources: Mapping[str, tuple[str, ...]]
    access_token_lifetime: int = _ACCESS_TOKEN_LIFETIME


@dataclass
class _Failure:
    mode: str
    delay: float
    location: str


@dataclass
class _State:
    keys: list[RSAKey] = field(default_factory=list)
    sessions: dict[str, TestSession] = field(default_factory=dict)  # by token and by cookie value
    revoked_jti: set[str] = field(default_factory=set)
    disabled_users: set[str] = field(default_factory=set)
    #: Users whose sessions ended when they were disabled: their JWTs no longer resolve either.
    ended_users: set[str] = field(default_factory=set)
    #: API resources (identifier -> scopes) and the machine clients allowed on them.
    resources: dict[str, set[str]] = field(default_factory=dict)
    machine_clients: dict[str, MachineClient] = field(default_factory=dict)
    failures: dict[str, _Failure] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)


def new_signing_key(size: int = 2048) -> RSAKey:
    """An RSA key like Authgear's: ``use: sig``, ``alg: RS256``, a UUID ``kid``."""
    return RSAKey.generate_key(size, parameters={"kid": str(uuid.uuid4()), "use": "sig", "alg": "RS256"})


class AuthgearTestServer:
    """An in-process Authgear look-alike, served by Werkzeug in a thread on a random loopback port.

    Use it as a context manager (``with AuthgearTestServer() as server:``) or call :meth:`start` and
    :meth:`stop`. ``server.endpoint`` is the origin to configure as ``AUTHGEAR_ENDPOINT``.
    """

    __test__ = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, key_size: int = 2048) -> None:
        self.host = host
        self._port = port
        self._key_size = key_size
        self._lock = threading.RLock()
        self._state = _State(keys=[new_signing_key(key_size)])
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.client_id = "test-client"
        self.app_id = "test-app"
        #: Keys the ``X-Authgear-Body-Signature`` of the events this server sends; set it to the app's.
        self.webhook_secret = secrets.token_hex(32)
        #: Where minting sends ``oidc.jwt.pre_create`` (a URL, a Flask or WSGI app; None: no hook), at which path.
        self.jwt_hook: EventTarget | None = None
        self.jwt_hook_path = "/"
        #: The project's ``hook.sync_hook_timeout_seconds`` and ``sync_hook_total_timeout_seconds`` (Authgear's
        #: defaults): how long a blocking hook may take, alone and all hooks of one event together.
        self.sync_hook_timeout = SYNC_HOOK_TIMEOUT
        self.sync_hook_total_timeout = SYNC_HOOK_TOTAL_TIMEOUT
        self._seq = itertools.count(1)

    # -- life cycle --------------------------------------------------------------------------------------

    def start(self) -> AuthgearTestServer:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self._port, self.wsgi_app, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
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

    # -- keys and tokens ---------------------------------------------------------------------------------

    @property
    def signing_key(self) -> RSAKey:
        """The private key that signs new tokens (the first key of the JWKS, as in Authgear)."""
        with self._lock:
            return self._state.keys[0]

    @property
    def keys(self) -> list[RSAKey]:
        with self._lock:
            return list(self._state.keys)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.as_dict(private=False) for k in self._state.keys]}

    def rotate_keys(self, *, keep_old: bool = True) -> RSAKey:
        """Put a new signing key first; keep the old ones published unless ``keep_old`` is False."""
        key = new_signing_key(self._key_size)
        with self._lock:
            self._state.keys = [key, *(self._state.keys if keep_old else [])]
        return key

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self._state.keys = [k for k in self._state.keys if k.kid != kid] or self._state.keys

    def publish_jwks(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Serve extra raw JWK dicts after the real keys (e.g. weak or symmetric keys an attacker hopes we use)."""
        with self._lock:
            self._state.extra_jwks = [dict(k) for k in keys]

    def claims_for(self, sub: str = "user-1", **claims: Any) -> dict[str, Any]:
        """The claims of an Authgear access token, as :meth:`issue_token` would sign them.

        Takes the keyword arguments of :func:`~flask_authgear.testing.events.access_token_claims` (``roles``,
        ``is_verified``, ``is_anonymous``, ``can_reauthenticate``, ``expires_in``, ``amr``, ``auth_time``); extra
        keywords become claims.
        """
        return access_token_claims(sub, issuer=self.endpoint, client_id=self.client_id, **claims)

    def issue_token(
        self,
        sub: str = "user-1",
        *,
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Mint an Authgear-shaped JWT access token; a negative ``expires_in`` gives an expired one.

        Accepts the keyword arguments of :meth:`claims_for`; extra keywords become claims.
        """
        signing = key or self.signing_key
        head: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid, **(header or {})}
        body = self.claims_for(sub, **claims)
        if self.jwt_hook is not None:
            body = self._jwt_pre_create(self.jwt_hook, body)
        return jwt.encode(head, body, signing, algorithms=[head["alg"]])

    def _jwt_pre_create(self, hook: EventTarget, claims: dict[str, Any]) -> dict[str, Any]:
        """Ask the ``oidc.jwt.pre_create`` hook, as Authgear does before it signs; raises ``HookError``."""
        user = sample_user(
            claims["sub"],
            roles=list(claims.get(CLAIM_ROLES, [])),
            is_anonymous=bool(claims.get(CLAIM_IS_ANONYMOUS)),
            is_verified=bool(claims.get(CLAIM_IS_VERIFIED)),
            can_reauthenticate=bool(claims.get(CLAIM_CAN_REAUTHENTICATE)),
        )
        payload = {"user": user, "identities": [sample_identity("email", claims["sub"])], "jwt": {"payload": claims}}
        # The only hook of the event here, so the event's total budget bounds it too.
        timeout = min(self.sync_hook_timeout, self.sync_hook_total_timeout)
        try:
            answer = self.send_event(hook, "oidc.jwt.pre_create", payload, path=self.jwt_hook_path, timeout=timeout)
        except requests.RequestException as exc:  # Authgear fails the token too when its hook is unreachable
            raise HookError(f"the oidc.jwt.pre_create hook could not be reached: {type(exc).__name__}") from exc
        return apply_jwt_mutations(claims, answer)

    # -- machines and API resources ----------------------------------------------------------------------

    def register_resource(self, uri: str, scopes: Iterable[str] = ()) -> None:
        """Register an API resource (the portal's API Resources page) and add ``scopes`` to it.

        Raises ``ValueError`` for an identifier or a scope Authgear refuses (``pkg/lib/resourcescope``): an https
        URI with a host, without user info, query or fragment; scope tokens of RFC 6749 not under
        ``https://authgear.com``.
        """
        _check_resource_uri(uri)
        scope_list = list(scopes)
        for scope in scope_list:
            if (
                not isinstance(scope, str)
                or not _SCOPE_TOKEN.fullmatch(scope)
                or scope.startswith("https://authgear.com")
            ):
                raise ValueError(f"invalid scope {scope!r}: RFC 6749 scope tokens, not under https://authgear.com")
        with self._lock:
            self._state.resources.setdefault(uri, set()).update(scope_list)

    def register_machine_client(
        self,
        client_id: str | None = None,
        *,
        resources: Mapping[str, Iterable[str]],
        client_secret: str | None = None,
        access_token_lifetime: int = _ACCESS_TOKEN_LIFETIME,
    ) -> MachineClient:
        """Register a machine-to-machine application allowed on ``resources`` (identifier -> granted scopes); the
        resources are registered too. Its ``client_id`` and ``client_secret`` get tokens from
        ``POST {endpoint}/oauth2/token`` with ``grant_type=client_credentials``, as from Authgear."""
        granted = {uri: tuple(dict.fromkeys(scopes)) for uri, scopes in resources.items()}
        for uri, scopes in granted.items():
            self.register_resource(uri, scopes)
        client = MachineClient(
            client_id=client_id or secrets.token_hex(8),
            client_secret=client_secret or secrets.token_urlsafe(32),
            resources=granted,
            access_token_lifetime=int(access_token_lifetime),
        )
        with self._lock:
            self._state.machine_clients[client.client_id] = client
        return client

    def machine_claims_for(
        self,
        client_id: str = "m2m-client",
        *,
        resource: str,
        scopes: Iterable[str] = (),
        expires_in: float | None = None,
    ) -> dict[str, Any]:
        """The claims of an access token of the client-credentials grant, in the order Authgear sets them
        (``EncodeClientAccessToken``): ``jti``, ``iss``, ``aud`` (the resource, as a list of one), ``iat``,
        ``exp``, ``client_id``, ``scope`` and ``sub`` (``client_id_<client_id>``); none of the user claims.

        Raises ``ValueError`` for a resource Authgear's token endpoint refuses (empty, or beginning with the
        endpoint).
        """
        if not resource:
            raise ValueError("resource is required")
        if resource.startswith(self.endpoint):
            raise ValueError("resource URI must not be a prefixed by authgear endpoint")
        now = int(time.time())
        lifetime = _ACCESS_TOKEN_LIFETIME if expires_in is None else expires_in
        return {
            "jti": hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest(),  # HashToken of the opaque token
            "iss": self.endpoint,
            "aud": [resource],
            "iat": now,
            "exp": int(now + lifetime),
            "client_id": client_id,
            "scope": " ".join(scopes),
            "sub": f"client_id_{client_id}",
        }

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
        """Mint the access token Authgear gives a machine for ``resource`` (see :meth:`machine_claims_for`), signed
        like every token here; extra keywords become claims (to build tokens that only claim the shape).

        Authgear asks no ``oidc.jwt.pre_create`` hook for these tokens, and keeps no session for them: the
        resolver never vouches for one. The token endpoint checks the client, its secret and its scopes; this
        method mints for any ``client_id``.
        """
        signing = key or self.signing_key
        head: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid, **(header or {})}
        body = self.machine_claims_for(client_id, resource=resource, scopes=scopes, expires_in=expires_in)
        body.update(claims)
        return jwt.encode(head, body, signing, algorithms=[head["alg"]])

    # -- webhook events ----------------------------------------------------------------------------------

    def send_event(
        self,
        target: EventTarget,
        type: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        seq: int | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        path: str = "/",
        timeout: float | None = None,
    ) -> EventResponse:
        """POST a signed Authgear event to ``target``: an http(s) URL, a Flask app or a WSGI app (at ``path``).

        ``payload`` defaults to a sample of ``type``; ``context`` entries replace the defaults; ``secret``
        defaults to :attr:`webhook_secret` (give another to test a bad signature). ``seq`` defaults to the next of
        this server, and ``id`` to ``seq`` in 16 hex digits, as Authgear numbers its events. Authgear sends an
        event once; the same ``id`` and ``timestamp`` sent again are what a replay of a captured delivery, or the
        same event at a second hook URL of the app, looks like.
        """
        return send_signed_event(
            target,
            type,
            payload,
            context,
            secret=self.webhook_secret if secret is None else secret,
            id=id,
            seq=next(self._seq) if seq is None else seq,
            timestamp=timestamp,
            app_id=self.app_id,
            client_id=self.client_id,
            path=path,
            timeout=timeout,
        )

    def revoke_token(self, token: str) -> None:
        """Make the resolver refuse a JWT it issued (local verification still accepts it until exp)."""
        claims = strict_json.loads_object(b64url_decode(token.split(".")[1]))
        with self._lock:
            self._state.revoked_jti.add(claims.get("jti", ""))

    # -- sessions for the resolver -----------------------------------------------------------------------

    def create_session(
        self,
        sub: str = "user-1",
        *,
        roles: Iterable[str] = (),
        is_verified: bool = True,
        is_anonymous: bool = False,
        can_reauthenticate: bool = True,
        amr: Iterable[str] = ("pwd",),
        authenticated_at: int | None = None,
    ) -> TestSession:
        """A session the resolver accepts by its opaque bearer token or by its ``session`` cookie."""
        session = TestSession(
            id=str(uuid.uuid4()),
            user_id=sub,
            token=secrets.token_urlsafe(32),
            cookie_value=secrets.token_urlsafe(32),
            roles=tuple(roles),
            is_verified=is_verified,
            is_anonymous=is_anonymous,
            can_reauthenticate=can_reauthenticate,
            amr=tuple(amr),
            authenticated_at=int(time.time()) if authenticated_at is None else authenticated_at,
        )
        with self._lock:
            self._state.sessions[session.token] = session
            self._state.sessions[session.cookie_value] = session
            self._state.sessions[session.app_session_token] = session
            self._state.disabled_users.discard(sub)
            self._state.ended_users.discard(sub)
        return session

    def revoke(self, session: TestSession | str) -> None:
        """End a session (by object, opaque token, cookie or app session value), or a JWT's access through the
        resolver."""
        if isinstance(session, str):
            found = self._state.sessions.get(session)
            if found is None:
                if session.count(".") == 2:
                    self.revoke_token(session)
                return
            session = found
        session.revoked = True

    def disable_user(self, sub: str, *, end_sessions: bool = True) -> None:
        """Disable a user: like Authgear, every session of theirs ends at once, so the resolver no longer knows
        their credentials (no ``X-Authgear-*`` header; ``Session-Valid: false`` for a ``session`` cookie).

        ``end_sessions=False`` is a user disabled while sessions stay live: a temporary disabling or an account
        validity period that began after they signed in, which Authgear applies without ending sessions. The
        resolver then answers ``Session-Valid: false`` for those sessions, bearer tokens included.
        """
        with self._lock:
            self._state.disabled_users.add(sub)
            if end_sessions:
                self._state.ended_users.add(sub)
                for session in self._state.sessions.values():
                    if session.user_id == sub:
                        session.revoked = True

    # -- failure switches and counters -------------------------------------------------------------------

    def fail(
        self, target: str, mode: str, *, delay: float = 2.0, location: str = "http://203.0.113.1/elsewhere"
    ) -> None:
        """Make ``target`` (discovery, jwks, resolver or all) misbehave: one of :data:`FAILURES`."""
        if mode not in FAILURES:
            raise ValueError(f"unknown failure {mode!r}; choose from {', '.join(FAILURES)}")
        if target not in (*_TARGETS, "all"):
            raise ValueError(f"unknown target {target!r}")
        with self._lock:
            for name in _TARGETS if target == "all" else (target,):
                self._state.failures[name] = _Failure(mode, delay, location)

    def heal(self, target: str = "all") -> None:
        with self._lock:
            if target == "all":
                self._state.failures.clear()
            else:
                self._state.failures.pop(target, None)

    def hits(self, target: str) -> int:
        """How many requests ``target`` (discovery, jwks, resolver) has answered."""
        with self._lock:
            return self._state.hits[target]

    def reset_hits(self) -> None:
        with self._lock:
            self._state.hits.clear()

    @contextmanager
    def failing(self, target: str, mode: str, **options: Any) -> Iterator[AuthgearTestServer]:
        """Context manager: ``target`` fails (see :meth:`fail`) inside the block and is healed after it."""
        self.fail(target, mode, **options)
        try:
            yield self
        finally:
            self.heal(target)

    def reset(self) -> None:
        """Forget sessions, revocations, failures and counters; keep the keys (apps may have cached them)."""
        with self._lock:
            self._state = _State(keys=self._state.keys)

    # -- the WSGI app ------------------------------------------------------------------------------------

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            response = self._answer("discovery", request, self._discovery)
        elif path == "/oauth2/jwks":
            response = self._answer("jwks", request, self._jwks_response)
        elif path in ("/_resolver/resolve", "/resolve"):
            response = self._answer("resolver", request, self._resolve)
        elif path == "/oauth2/token":
            response = self._answer("token", request, self._token)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def _answer(self, target: str, request: Request, handler: Any) -> Response:
        with self._lock:
            self._state.hits[target] += 1
            failure = self._state.failures.get(target)
        if failure is None:
            response: Response = handler(request)
            return response
        return self._failure_response(failure)

    def _failure_response(self, failure: _Failure) -> Response:
        mode = failure.mode
        if mode == "500":
            return Response("internal error", status=500)
        if mode == "html":
            return Response("<html><body>Bad gateway</body></html>", content_type="text/html")
        if mode == "empty":
            return json_response({})
        if mode == "bad_keys":
            return json_response({"keys": "x"})
        if mode == "garbage":
            return Response(b"\x00\xff{not json", content_type="application/json")
        if mode == "oversized":
            return json_response({"keys": [], "padding": "x" * (2 * 1024 * 1024)})
        if mode == "slow":
            time.sleep(failure.delay)
            return Response("late", status=504)
        if mode == "drip":
            return Response(_drip(failure.delay), content_type="application/json", direct_passthrough=True)
        if mode == "redirect":
            return Response("", status=302, headers={"Location": failure.location})
        # invalid_answer: a resolver answer that no real Authgear sends
        return Response("", headers={"X-Authgear-Session-Valid": "maybe"})

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

    def _jwks_response(self, request: Request) -> Response:
        document = self.jwks()
        with self._lock:
            document["keys"].extend(self._state.extra_jwks)
        return json_response(document)  # like Authgear: no Cache-Control

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
        response = Response("", status=200)
        session, invalid = self._session_for_request(request)
        if session is not None:
            with self._lock:
                user_gone = session.user_id in self._state.disabled_users
            if user_gone:
                session, invalid = None, True
        if session is not None:
            _valid_headers(response, session)
        elif invalid:
            response.headers["X-Authgear-Session-Valid"] = "false"
            if "session" in request.cookies:
                response.set_cookie("session", "", max_age=0, path="/", httponly=True)
        return response

    def _session_for_request(self, request: Request) -> tuple[TestSession | None, bool]:
        """The session the request's credentials resolve to, and whether an IdP ``session`` cookie was invalid."""
        scheme, space, token = request.headers.get("Authorization", "").partition(" ")
        if space and scheme.lower() == "bearer" and token:
            session = self._session_for_bearer(token)
            if session is not None:
                return session, False
        app_session = request.cookies.get("app_session")
        if app_session is not None:
            with self._lock:
                found = self._state.sessions.get(app_session)
            if found is not None and not found.revoked and app_session == found.app_session_token:
                return found, False
        access_token = request.cookies.get("app_access_token")
        if access_token is not None:
            session = self._session_for_bearer(access_token)
            if session is not None:
                return session, False
        value = request.cookies.get("session")
        if value is None:
            return None, False
        with self._lock:
            found = self._state.sessions.get(value)
        if found is not None and not found.revoked and value == found.cookie_value:
            return found, False
        return None, True

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
            client_id = unquote((request.authorization.username or "").replace("+", " "))
            client_secret = unquote((request.authorization.password or "").replace("+", " "))
        with self._lock:
            client = self._state.machine_clients.get(client_id)
            resources = {uri: set(scopes) for uri, scopes in self._state.resources.items()}
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
        allowed = [scope for scope in client.resources[resource] if scope in resources[resource]]
        requested = param("scope")
        scopes = requested.split(" ") if requested else allowed
        for scope in scopes:
            if scope not in allowed:
                return _oauth_error("invalid_scope", f"specified scope is not allowed: {scope}")
        lifetime = client.access_token_lifetime
        token = self.machine_token(client.client_id, resource=resource, scopes=scopes, expires_in=lifetime)
        answer = {"access_token": token, "expires_in": lifetime, "scope": " ".join(scopes), "token_type": "Bearer"}
        return _no_store(json_response(answer))

    def _session_for_bearer(self, token: str) -> TestSession | None:
        with self._lock:
            found = self._state.sessions.get(token)
            if found is not None:
                return None if found.revoked or token != found.token else found
        if token.count(".") == 2:
            return self._session_from_jwt(token)
        return None

    def _session_from_jwt(self, token: str) -> TestSession | None:
        """The resolver also accepts the JWT access tokens it issued, while they are valid and not revoked."""
        try:
            header = strict_json.loads_object(b64url_decode(token.split(".")[0]))
            key = {k.kid: k for k in self.keys}[header["kid"]]  # a token without a known kid is refused
            decoded = jwt.decode(token, key, algorithms=["RS256"])
        except Exception:
            return None
        claims = decoded.claims
        # Authgear finds the grant of a JWT it issued for a user, whose aud is its origin (DecodeAccessToken); a
        # machine's token, for an API resource, has no grant and no session behind it.
        aud = claims.get("aud")
        if self.endpoint not in (aud if isinstance(aud, list) else [aud]):
            return None
        with self._lock:
            if claims.get("jti") in self._state.revoked_jti or claims.get("sub") in self._state.ended_users:
                return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return None
        return TestSession(
            id=hashlib.sha256(token.encode()).hexdigest()[:16],
            user_id=claims["sub"],
            token=token,
            cookie_value="",
            roles=tuple(claims.get(CLAIM_ROLES, ())),
            is_anonymous=bool(claims.get(CLAIM_IS_ANONYMOUS)),
            is_verified=bool(claims.get(CLAIM_IS_VERIFIED)),
            can_reauthenticate=bool(claims.get(CLAIM_CAN_REAUTHENTICATE)),
            amr=tuple(claims.get("amr", ())),
            authenticated_at=claims.get("auth_time"),
        )


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


def _check_resource_uri(uri: str) -> None:
    """Authgear's rules for an API resource identifier (``FormatResourceURI``); ``ValueError`` says which fails."""
    if not isinstance(uri, str):
        raise ValueError("a resource identifier is a string")
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.netloc.rpartition("@")[2]:
        raise ValueError(f"resource URI {uri!r} must start with https:// and have a host")
    if "@" in parts.netloc:
        raise ValueError("resource URI must not have user info")
    if parts.query or "?" in uri:
        raise ValueError("resource URI must not have query")
    if parts.fragment or "#" in uri:
        raise ValueError("resource URI must not have fragment")


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    """An error of Authgear's token endpoint: 400 (its default) with ``error`` and ``error_description``."""
    return _no_store(json_response({"error": error, "error_description": description}, status))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _drip(delay: float) -> Iterator[bytes]:
    """A body that trickles one byte at a time, to test total deadlines rather than per-read timeouts."""
    end = time.monotonic() + delay
    yield b'{"keys": ['
    while time.monotonic() < end:
        time.sleep(0.05)
        yield b" "
    yield b"]}"
