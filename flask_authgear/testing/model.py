"""What the local server knows, as an Authgear project does: its signing keys, its users' sessions, its API
resources and the machine clients allowed on them.

No HTTP here: :class:`~flask_authgear.testing.AuthgearTestServer` answers its routes from this model.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from ..core import json as strict_json
from ..core.jose import b64url_decode
from .events import user_flags

__all__ = ["ACCESS_TOKEN_LIFETIME", "MachineClient", "Project", "TestSession", "new_signing_key"]

#: Authgear's default access-token lifetime, in seconds (``DefaultAccessTokenLifetime``).
ACCESS_TOKEN_LIFETIME = 1800
#: RFC 6749 section 3.3, as Authgear checks the scopes of an API resource (``FormatScopeToken``).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: Authgear's own scopes are under this prefix: a resource's scopes never are.
_AUTHGEAR_SCOPES = "https://authgear.com"
_opaque = functools.partial(secrets.token_urlsafe, 32)


@dataclass
class TestSession:
    """A session the resolver accepts, through a bearer token or a cookie.

    ``roles`` and ``amr`` may be given as any iterable, read once into tuples; ``authenticated_at`` defaults to
    now, and None leaves it unknown (the resolver then sends no ``X-Authgear-Session-Authenticated-At``).
    """

    __test__ = False  # not a pytest test class

    user_id: str
    roles: tuple[str, ...] = ()
    is_anonymous: bool = False
    is_verified: bool = True
    can_reauthenticate: bool = True
    amr: tuple[str, ...] = ("pwd",)
    authenticated_at: int | None = field(default_factory=lambda: int(time.time()))
    revoked: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: The opaque access token, sent as a bearer token or in the ``app_access_token`` cookie.
    token: str = field(default_factory=_opaque)
    #: The IdP ``session`` cookie value of this session.
    cookie_value: str = field(default_factory=_opaque)
    #: The ``app_session`` cookie value of this session (Authgear's app session token).
    app_session_token: str = field(default_factory=_opaque)

    def __post_init__(self) -> None:
        self.roles, self.amr = tuple(self.roles), tuple(self.amr)

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


def new_signing_key(size: int = 2048) -> RSAKey:
    """An RSA key like Authgear's: ``use: sig``, ``alg: RS256``, a UUID ``kid``."""
    return RSAKey.generate_key(size, parameters={"kid": str(uuid.uuid4()), "use": "sig", "alg": "RS256"})


@dataclass
class _State:
    """Everything of the project but its keys: what :meth:`Project._forget` empties."""

    sessions: dict[str, TestSession] = field(default_factory=dict)  # by token, cookie value and app session token
    revoked_jti: set[str] = field(default_factory=set)
    disabled_users: set[str] = field(default_factory=set)
    #: Users whose sessions ended when they were disabled: their JWTs no longer resolve either.
    ended_users: set[str] = field(default_factory=set)
    #: API resources (their identifiers) and the machine clients allowed on them.
    resources: set[str] = field(default_factory=set)
    machine_clients: dict[str, MachineClient] = field(default_factory=dict)
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)


class Project:
    """The keys, sessions, users, API resources and machine clients of the local server, safe across threads.

    Changes take the lock; a read that is one lookup takes none: the key list is replaced, never changed in place,
    and a dict or set answers one lookup whole while another thread changes it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._keys = [new_signing_key()]
        self._state = _State()

    def _forget(self) -> None:
        """Forget sessions, revocations, users, resources and machine clients; keep the keys (apps may have cached
        them)."""
        with self._lock:
            self._state = _State()

    # -- keys ----------------------------------------------------------------------------------------------------

    @property
    def signing_key(self) -> RSAKey:
        """The private key that signs new tokens (the first key of the JWKS, as in Authgear)."""
        return self._keys[0]

    @property
    def keys(self) -> list[RSAKey]:
        return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document the server publishes: its public keys, then the ones given to :meth:`publish_jwks`."""
        return {"keys": [k.as_dict(private=False) for k in self._keys] + self._state.extra_jwks}

    def rotate_keys(self, *, keep_old: bool = True) -> RSAKey:
        """Put a new signing key first; keep the old ones published unless ``keep_old`` is False."""
        key = new_signing_key()
        with self._lock:
            self._keys = [key, *(self._keys if keep_old else [])]
        return key

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self._keys = [k for k in self._keys if k.kid != kid] or self._keys

    def publish_jwks(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Serve extra raw JWK dicts after the real keys (e.g. weak or symmetric keys an attacker hopes we use)."""
        with self._lock:
            self._state.extra_jwks = [dict(k) for k in keys]

    # -- machines and API resources ------------------------------------------------------------------------------

    def register_resource(self, uri: str) -> None:
        """Register an API resource (the portal's API Resources page).

        Raises ``ValueError`` for an identifier Authgear refuses (``pkg/lib/resourcescope``): an https URI with a
        host, without user info, query or fragment.
        """
        _check_resource_uri(uri)
        with self._lock:
            self._state.resources.add(uri)

    def register_machine_client(
        self, client_id: str | None = None, *, resources: Mapping[str, Iterable[str]], client_secret: str | None = None
    ) -> MachineClient:
        """Register a machine-to-machine application allowed on ``resources`` (identifier -> granted scopes); the
        resources are registered too. Its ``client_id`` and ``client_secret`` get tokens from
        ``POST {endpoint}/oauth2/token`` with ``grant_type=client_credentials``, as from Authgear.

        Raises ``ValueError`` for a resource or a scope Authgear refuses (``pkg/lib/resourcescope``): see
        :meth:`register_resource`; scope tokens of RFC 6749 not under ``https://authgear.com``.
        """
        granted = {uri: tuple(dict.fromkeys(scopes)) for uri, scopes in resources.items()}
        for uri, scopes in granted.items():  # all checked before anything is registered
            _check_resource_uri(uri)
            for scope in scopes:
                if not (isinstance(scope, str) and _SCOPE_TOKEN.fullmatch(scope)) or scope.startswith(_AUTHGEAR_SCOPES):
                    raise ValueError(f"invalid scope {scope!r}: RFC 6749 scope tokens, not under {_AUTHGEAR_SCOPES}")
        client = MachineClient(
            client_id=client_id or secrets.token_hex(8),
            client_secret=client_secret or secrets.token_urlsafe(32),
            resources=granted,
        )
        with self._lock:
            self._state.resources.update(granted)
            self._state.machine_clients[client.client_id] = client
        return client

    def _machine_client(self, client_id: str) -> tuple[MachineClient | None, set[str]]:
        """The machine client ``client_id`` (None when unknown) and the identifiers of the registered resources."""
        with self._lock:
            return self._state.machine_clients.get(client_id), set(self._state.resources)

    # -- users and sessions --------------------------------------------------------------------------------------

    def create_session(self, sub: str = "user-1", **fields: Any) -> TestSession:
        """A session the resolver accepts by its opaque bearer token or by its ``session`` cookie.

        ``fields`` are those of :class:`TestSession`: ``roles``, ``is_verified``, ``is_anonymous``,
        ``can_reauthenticate``, ``amr``, ``authenticated_at``.
        """
        session = TestSession(sub, **fields)
        with self._lock:
            for credential in (session.token, session.cookie_value, session.app_session_token):
                self._state.sessions[credential] = session
            self._state.disabled_users.discard(sub)
            self._state.ended_users.discard(sub)
        return session

    def revoke(self, session: TestSession | str) -> None:
        """End a session (by object, opaque token, cookie or app session value), or a JWT's access through the
        resolver."""
        with self._lock:
            found = self._state.sessions.get(session) if isinstance(session, str) else session
            if found is not None:
                found.revoked = True
            elif isinstance(session, str) and session.count(".") == 2:  # a JWT it issued
                claims = strict_json.loads_object(b64url_decode(session.split(".")[1]))
                self._state.revoked_jti.add(claims.get("jti", ""))

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

    def _is_disabled(self, user_id: str) -> bool:
        return user_id in self._state.disabled_users

    def _session_by(self, value: str | None, credential: str) -> TestSession | None:
        """The live session whose ``credential`` (``token``, ``cookie_value`` or ``app_session_token``) is
        ``value``: the value of one kind never stands for another."""
        found = self._state.sessions.get(value or "")
        if found is None or found.revoked or getattr(found, credential) != value:
            return None
        return found

    def _jwt_session(self, token: str, audience: str) -> TestSession | None:
        """The resolver also accepts the JWT access tokens it issued for ``audience``, while they are valid and not
        revoked."""
        try:
            header = strict_json.loads_object(b64url_decode(token.split(".")[0]))
            key = {k.kid: k for k in self.keys}[header["kid"]]  # a token without a known kid is refused
            claims = jwt.decode(token, key, algorithms=["RS256"]).claims
        except Exception:
            return None
        # Authgear finds the grant of a JWT it issued for a user, whose aud is its origin (DecodeAccessToken); a
        # machine's token, for an API resource, has no grant and no session behind it.
        aud = claims.get("aud")
        if audience not in (aud if isinstance(aud, list) else [aud]):
            return None
        if claims.get("jti") in self._state.revoked_jti or claims.get("sub") in self._state.ended_users:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return None
        amr, authenticated_at = claims.get("amr", ()), claims.get("auth_time")
        return TestSession(claims["sub"], amr=amr, authenticated_at=authenticated_at, token=token, **user_flags(claims))


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
