"""What a route asks of the identity that authenticated: one list of options, checked in one place.

The Flask decorator, ``auth.protect``, ``verify_request`` and the WSGI middleware's protected paths all take these
options and build a :class:`Requirements` once, when the route is declared; a mistake is a
:class:`~flask_authgear.errors.ConfigurationError` then, never a surprise on a request.

Security notes. Authgear anonymous users are refused unless a route allows them: an anonymous account proves a
device, not a person. Machines (tokens of the client-credentials grant, for an API resource) are refused unless a
route allows them, so a route written for people never serves an application that has no user behind it. A
machine has no roles, is never verified and never authenticated interactively, so asking a machine route for
those could never pass and is refused when declared: machine routes are guarded by scopes. Every listed scope
must be granted (all-of), and a refusal names them in the RFC 6750 ``scope`` attribute.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ConfigurationError, ForbiddenError, ReauthenticationRequiredError
from ..user import AuthgearUser

#: RFC 6749 section 3.3: a scope-token; these characters are also safe inside a ``WWW-Authenticate`` header.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a route asks of its identity, checked after authentication. Build it with :meth:`build`."""

    optional: bool = False
    roles: frozenset[str] | None = None
    all_roles: frozenset[str] | None = None
    verified: bool = False
    allow_anonymous: bool = False
    allow_machine: bool = False
    #: Every one of these must be in the token's ``scope``.
    scopes: frozenset[str] | None = None
    max_auth_age: float | None = None
    #: ``scopes`` as the RFC 6750 ``scope`` attribute of a refusal (sorted, space-separated).
    scope_param: str = ""

    @classmethod
    def build(
        cls,
        *,
        optional: bool = False,
        roles: str | Iterable[str] | None = None,
        all_roles: str | Iterable[str] | None = None,
        verified: bool = False,
        allow_anonymous: bool = False,
        allow_machine: bool = False,
        scopes: str | Iterable[str] | None = None,
        max_auth_age: float | None = None,
    ) -> Requirements:
        """Validate the options; a mistake raises :class:`ConfigurationError` when the route is declared."""
        if max_auth_age is not None and (
            isinstance(max_auth_age, bool)
            or not isinstance(max_auth_age, int | float)
            or not math.isfinite(max_auth_age)
            or max_auth_age < 0
        ):
            raise ConfigurationError("max_auth_age must be a number of seconds >= 0")
        role_set, all_role_set = _names(roles, "roles", _is_role), _names(all_roles, "all_roles", _is_role)
        scope_set = _names(scopes, "scopes", _SCOPE_TOKEN.fullmatch)
        if allow_machine:
            user_only = [
                name
                for name, value in (
                    ("roles", role_set),
                    ("all_roles", all_role_set),
                    ("verified", verified),
                    ("max_auth_age", max_auth_age),
                )
                if value
            ]
            if user_only:
                raise ConfigurationError(
                    f"allow_machine=True with {', '.join(user_only)}: a machine has no roles, is never verified and "
                    "never signs in, so it could never pass; guard a machine route with scopes=[...]"
                )
        return cls(
            optional=bool(optional),
            roles=role_set,
            all_roles=all_role_set,
            verified=bool(verified),
            allow_anonymous=bool(allow_anonymous),
            allow_machine=bool(allow_machine),
            scopes=scope_set,
            max_auth_age=None if max_auth_age is None else float(max_auth_age),
            scope_param=" ".join(sorted(scope_set)) if scope_set else "",
        )

    def check(self, user: AuthgearUser) -> None:
        """Raise 403 for an identity lacking what the route needs, 401 (RFC 9470) for a too old authentication."""
        if user.is_anonymous and not self.allow_anonymous:
            raise ForbiddenError("Anonymous users are not allowed to access this resource.")
        if user.is_machine and not self.allow_machine:
            raise ForbiddenError("This resource needs a signed-in user; a machine-to-machine token is not enough.")
        if self.verified and not user.is_verified:
            raise ForbiddenError("A verified account is required.")
        if self.roles is not None and user.roles.isdisjoint(self.roles):
            raise ForbiddenError("The user does not have a required role.")
        if self.all_roles is not None and not user.roles.issuperset(self.all_roles):
            raise ForbiddenError("The user does not have a required role.")
        if self.scopes is not None and not self.scopes.issubset(user.scopes):
            raise ForbiddenError("The access token lacks a required scope.", scope=self.scope_param)
        if self.max_auth_age is not None:
            at = user.authenticated_at
            # Unknown authentication time: fail closed, the client can still re-authenticate.
            if at is None or time.time() - at.timestamp() > self.max_auth_age:
                raise ReauthenticationRequiredError(max_age=str(int(self.max_auth_age)))


#: No requirement beyond a proven identity that is neither anonymous nor a machine.
DEFAULT_REQUIREMENTS = Requirements()


def _is_role(value: str) -> bool:
    return bool(value)


def _names(value: str | Iterable[str] | None, what: str, valid: Callable[[str], object]) -> frozenset[str] | None:
    """A non-empty set of names from a list (read once), or from one string naming one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)  # roles="admin" means the role admin, not the letters a, d, m, i, n
    try:
        out = frozenset(value)
    except TypeError:
        raise ConfigurationError(f"{what} must be a list of names") from None
    if not out or not all(isinstance(name, str) and valid(name) for name in out):
        hint = " (scope tokens: printable ASCII without spaces, quotes or backslashes)" if what == "scopes" else ""
        raise ConfigurationError(f"{what} must be a non-empty list of non-empty names{hint}")
    return out
