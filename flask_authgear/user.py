"""The identity every mode produces, whatever proved it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

Source = Literal["jwt", "resolver", "proxy"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: Authgear's namespaced user claims in JWT access tokens.
CLAIM_IS_ANONYMOUS = "https://authgear.com/claims/user/is_anonymous"
CLAIM_IS_VERIFIED = "https://authgear.com/claims/user/is_verified"
CLAIM_CAN_REAUTHENTICATE = "https://authgear.com/claims/user/can_reauthenticate"
CLAIM_ROLES = "https://authgear.com/claims/user/roles"


@dataclass(frozen=True, slots=True)
class AuthgearUser:
    """An authenticated Authgear user. Immutable, so one request can never alter another's identity."""

    id: str
    is_anonymous: bool = False
    is_verified: bool = False
    can_reauthenticate: bool = False
    roles: frozenset[str] = frozenset()
    amr: tuple[str, ...] = ()
    #: When the user authenticated (``auth_time`` / ``X-Authgear-Session-Authenticated-At``), if known.
    authenticated_at: datetime | None = None
    #: The verified JWT claims; empty for resolver and proxy modes.
    claims: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)
    source: Source = "jwt"

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def has_all_roles(self, *roles: str) -> bool:
        return self.roles.issuperset(roles)

    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to (JWT mode only)."""
        value = self.claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        value = self.claims.get("scope")
        return frozenset(value.split()) if isinstance(value, str) else frozenset()
