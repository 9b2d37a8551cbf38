"""Every event type Authgear sends, and which of them are blocking: the one list the library and its kit read."""

from __future__ import annotations

__all__ = [
    "AUTHENTICATION_EVENTS",
    "BLOCKING_EVENTS",
    "EVENT_TYPES",
    "ID_TOKEN_EVENT",
    "JWT_EVENT",
    "NON_BLOCKING_EVENTS",
    "USER_MUTATION_EVENTS",
]

#: Events Authgear delivers synchronously, before the change is stored, and whose answer it obeys.
USER_MUTATION_EVENTS = frozenset(
    {"user.pre_create", "user.profile.pre_update", "user.pre_schedule_deletion", "user.pre_schedule_anonymization"}
)
AUTHENTICATION_EVENTS = frozenset(
    {"authentication.pre_initialize", "authentication.post_identified", "authentication.pre_authenticated"}
)
JWT_EVENT = "oidc.jwt.pre_create"
ID_TOKEN_EVENT = "oidc.id_token.pre_create"
BLOCKING_EVENTS = USER_MUTATION_EVENTS | AUTHENTICATION_EVENTS | {JWT_EVENT, ID_TOKEN_EVENT}

_IDENTITY_EVENTS = tuple(
    f"identity.{kind}.{change}"
    for kind, changes in (
        ("email", ("added", "removed", "updated", "verified", "unverified")),
        ("phone", ("added", "removed", "updated", "verified", "unverified")),
        ("username", ("added", "removed", "updated")),
        ("oauth", ("connected", "disconnected")),
        ("biometric", ("enabled", "disabled")),
    )
    for change in changes
)
#: Delivered after the change; the answer is ignored (a non-2xx one is a failed delivery, retried).
NON_BLOCKING_EVENTS = (
    "user.created",
    "user.profile.updated",
    "user.authenticated",
    "user.disabled",
    "user.reenabled",
    "user.anonymous.promoted",
    "user.deletion_scheduled",
    "user.deletion_unscheduled",
    "user.deleted",
    *_IDENTITY_EVENTS,
)
EVENT_TYPES = (*sorted(BLOCKING_EVENTS), *NON_BLOCKING_EVENTS)
