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
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

from ..errors import ConfigurationError, ForbiddenError, ReauthenticationRequiredError
from ..user import AuthgearUser

__all__ = ["DEFAULT_REQUIREMENTS", "Requirements", "RouteOptions"]

#: The options only a user can satisfy: a machine route asking for one could never pass.
_USER_ONLY = ("roles", "all_roles", "verified", "max_auth_age")
#: RFC 6749 section 3.3: a scope-token; these characters are also safe inside a ``WWW-Authenticate`` header.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class RouteOptions(TypedDict, total=False):
    """The options of a protected route, as keywords: ``@require_auth(...)``, ``verify_request(...)``,
    ``auth.protect(blueprint, ...)`` and the values of the WSGI middleware's ``protect`` mapping take them.

    They are the fields of :class:`Requirements`, which documents them; mypy holds the two to the same names and
    types where the adapters build one from the other (``Requirements(**options)``).
    """

    optional: bool
    roles: str | Iterable[str] | None
    all_roles: str | Iterable[str] | None
    verified: bool
    allow_anonymous: bool
    allow_machine: bool
    scopes: str | Iterable[str] | None
    max_auth_age: float | None


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a route asks of its identity, validated once when the route is declared (a mistake raises
    :class:`~flask_authgear.errors.ConfigurationError` then) and checked after each authentication.

    Args:
        optional: let requests without any credentials through with no user (``current_user`` is falsy);
            invalid credentials are still refused with 401. Flask only: outside the middleware's ``protect``
            every path is optional.
        roles: the user needs at least one of these roles (any-of), else 403.
        all_roles: the user needs every one of these roles (all-of), else 403.
        verified: the user's account must be verified (``is_verified``), else 403.
        allow_anonymous: accept Authgear anonymous users; they are refused with 403 by default.
        allow_machine: accept machines (client-credentials tokens for an API resource, ``is_machine``); they are
            refused with 403 by default. Cannot be combined with the user-only checks (roles, ``verified``,
            ``max_auth_age``): guard a machine route with ``scopes``.
        scopes: the token must carry every one of these scopes, else 403 with ``error="insufficient_scope"`` and
            ``scope="..."`` (RFC 6750); for users and machines alike.
        max_auth_age: the user must have authenticated at most this many seconds ago, else 401 with
            ``error="insufficient_user_authentication"`` and ``max_age`` (RFC 9470), so the client can ask the
            user to sign in again before a sensitive action.

    A name list may be one string (``roles="admin"``) or any iterable, read once; it is kept as a frozenset.
    """

    optional: bool = False
    roles: str | Iterable[str] | None = None
    all_roles: str | Iterable[str] | None = None
    verified: bool = False
    allow_anonymous: bool = False
    allow_machine: bool = False
    scopes: str | Iterable[str] | None = None
    max_auth_age: float | None = None

    def __post_init__(self) -> None:
        age = self.max_auth_age
        if age is not None and (
            isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age) or age < 0
        ):
            raise ConfigurationError("max_auth_age must be a number of seconds >= 0")
        # Frozen: the normalised values are set past the dataclass's own __setattr__.
        object.__setattr__(self, "roles", _names(self.roles, "roles", bool))
        object.__setattr__(self, "all_roles", _names(self.all_roles, "all_roles", bool))
        object.__setattr__(self, "scopes", _names(self.scopes, "scopes", _SCOPE_TOKEN.fullmatch))
        object.__setattr__(self, "max_auth_age", None if age is None else float(age))
        if self.allow_machine and (user_only := [name for name in _USER_ONLY if getattr(self, name)]):
            raise ConfigurationError(
                f"allow_machine=True with {', '.join(user_only)}: a machine has no roles, is never verified and "
                "never signs in, so it could never pass; guard a machine route with scopes=[...]"
            )

    def with_options(self, **options: Unpack[RouteOptions]) -> Requirements:
        """These requirements with ``options`` in place of their own (validated again), or themselves."""
        return replace(self, **options) if options else self

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
        if self.scopes is not None and not user.scopes.issuperset(self.scopes):
            # RFC 6750 section 3: the scopes the resource needs, space-separated.
            raise ForbiddenError("The access token lacks a required scope.", scope=" ".join(sorted(self.scopes)))
        if self.max_auth_age is not None:
            at = user.authenticated_at
            # Unknown authentication time: fail closed, the client can still re-authenticate.
            if at is None or time.time() - at.timestamp() > self.max_auth_age:
                raise ReauthenticationRequiredError(max_age=str(int(self.max_auth_age)))


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


#: No requirement beyond a proven identity that is neither anonymous nor a machine.
DEFAULT_REQUIREMENTS = Requirements()
