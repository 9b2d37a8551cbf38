"""The identity every mode produces, whatever proved it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CLAIM_CAN_REAUTHENTICATE",
    "CLAIM_IS_ANONYMOUS",
    "CLAIM_IS_VERIFIED",
    "CLAIM_ROLES",
    "MACHINE_SUBJECT_PREFIX",
    "NO_CLAIMS",
    "USER_CLAIM_PREFIX",
    "AuthgearUser",
    "Source",
    "freeze",
]

Source = Literal["jwt", "resolver", "proxy"]

#: The claims of a user that no JWT proved (resolver and proxy modes).
NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})

#: Authgear's namespaced user claims in JWT access tokens.
CLAIM_IS_ANONYMOUS = "https://authgear.com/claims/user/is_anonymous"
CLAIM_IS_VERIFIED = "https://authgear.com/claims/user/is_verified"
CLAIM_CAN_REAUTHENTICATE = "https://authgear.com/claims/user/can_reauthenticate"
CLAIM_ROLES = "https://authgear.com/claims/user/roles"
#: The prefix of every Authgear user claim; a machine-to-machine token carries none.
USER_CLAIM_PREFIX = "https://authgear.com/claims/user/"
#: The ``sub`` of a machine-to-machine (client-credentials) token is this prefix and the token's ``client_id``.
MACHINE_SUBJECT_PREFIX = "client_id_"


#: The JSON scalar types: immutable, so kept as they are.
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A read-only deep copy of JSON data: objects become read-only mappings, arrays become tuples.

    Verified identities are shared (a cached token serves every request that presents it), so nothing
    reachable from a user may be mutable.
    """
    # Scalars (most claims) are kept without a call; arrays and dicts are tested before the Mapping ABC, whose
    # isinstance is the slow one.
    if isinstance(value, list | tuple):
        return tuple([item if type(item) in _IMMUTABLE else freeze(item) for item in value])
    if isinstance(value, dict | Mapping):
        copy = dict(value)
        for key, item in copy.items():
            if type(item) not in _IMMUTABLE:
                copy[key] = freeze(item)  # replacing a value leaves the dict's size and order, so iterating goes on
        return MappingProxyType(copy)
    return value


@dataclass(frozen=True, slots=True)
class AuthgearUser:
    """An authenticated Authgear user, or a machine. Immutable, so one request can never alter another's identity.

    A machine is an application that got its token by the client-credentials grant for an API resource
    (``is_machine``): its ``id`` is ``client_id_<client_id>``, it has no roles, and it is never anonymous or
    verified. Routes accept one only when they say so.
    """

    id: str
    is_anonymous: bool = False
    is_verified: bool = False
    can_reauthenticate: bool = False
    roles: frozenset[str] = frozenset()
    amr: tuple[str, ...] = ()
    #: When the user authenticated (``auth_time`` / ``X-Authgear-Session-Authenticated-At``), if known.
    authenticated_at: datetime | None = None
    #: The verified JWT claims; empty for resolver and proxy modes.
    claims: Mapping[str, Any] = field(default_factory=lambda: NO_CLAIMS, compare=False)
    source: Source = "jwt"
    #: A machine-to-machine token (client credentials), not a person; see :attr:`client_id` and :attr:`scopes`.
    is_machine: bool = False

    def __post_init__(self) -> None:
        # Accept any iterable from callers but store only immutable values.
        setter = object.__setattr__
        if not isinstance(self.roles, frozenset):
            setter(self, "roles", frozenset(self.roles))
        if not isinstance(self.amr, tuple):
            setter(self, "amr", tuple(self.amr))
        if self.claims is not NO_CLAIMS:
            setter(self, "claims", freeze(self.claims))

    def __repr__(self) -> str:
        # The dataclass repr, except that roles are listed sorted: set order differs between processes and
        # between equal sets built in different orders, and logs and test output should not.
        texts = {item.name: repr(getattr(self, item.name)) for item in fields(self)}
        texts["roles"] = (
            "frozenset({" + ", ".join(map(repr, sorted(self.roles))) + "})" if self.roles else "frozenset()"
        )
        return f"{type(self).__qualname__}({', '.join(f'{name}={text}' for name, text in texts.items())})"

    # -- flask-login compatibility --------------------------------------------------------------------------

    @property
    def is_authenticated(self) -> bool:
        """Always True: a user object exists only for a request whose credentials were proven. Templates and
        code written for flask-login (``current_user.is_authenticated``) keep working."""
        return True

    def has_role(self, role: str) -> bool:
        """Whether the user holds ``role`` (Authgear role keys are case-sensitive). For several, test the set:
        ``user.roles & {"admin", "editor"}`` (any of them), ``user.roles >= {"admin", "editor"}`` (all)."""
        return role in self.roles

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of the identity, for APIs, logs of one's own and the CLI: every field but the claims
        (sets as sorted lists, the time in ISO 8601), with :attr:`client_id` and :attr:`scopes`."""
        summary = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "claims"}
        return {
            **summary,
            "roles": sorted(self.roles),
            "amr": list(self.amr),
            "authenticated_at": self.authenticated_at.isoformat() if self.authenticated_at else None,
            "client_id": self.client_id,
            "scopes": sorted(self.scopes),
        }

    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to (JWT mode only): for a machine, the machine itself."""
        value = self.claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        """The token's space-separated ``scope`` claim as a set (JWT mode only): what a machine may do, or what a
        user's token was granted."""
        value = self.claims.get("scope")
        return frozenset(value.split()) if isinstance(value, str) else frozenset()
