"""Every event type Authgear sends, which of them are blocking, and how long Authgear waits for each answer.

The one list the library, its test kit and its CLI read (Authgear's ``pkg/lib/config/hook.go`` and
``pkg/api/event``). How Authgear delivers (``pkg/lib/hook``):

* A **blocking** event is sent synchronously, before the change is stored, to the one hook configured for its
  type, which has ``sync_hook_timeout_seconds`` (5 s unless the project sets it) to answer; all hooks of one event
  together have ``sync_hook_total_timeout_seconds`` (10 s). Authgear obeys the answer; a non-2xx status, a
  timeout or an answer it refuses aborts the user's operation.
* A **non-blocking** event is sent ONCE, after the change is stored, from a background task, to every hook URL
  subscribed to its type or to ``"*"``, with 60 s to answer. A failed delivery is only written to Authgear's log:
  there is no queue and nothing is sent again.
* ``identity.{email,phone}.{verified,unverified}`` are sent, but Authgear's configuration cannot name them: only a
  hook subscribed to ``"*"`` receives them.
"""

from __future__ import annotations

import difflib

from ..errors import ConfigurationError

__all__ = [
    "AUTHENTICATION_EVENTS",
    "BLOCKING_EVENTS",
    "EVENT_TYPES",
    "ID_TOKEN_EVENT",
    "JWT_EVENT",
    "NON_BLOCKING_EVENTS",
    "NON_BLOCKING_TIMEOUT",
    "SYNC_HOOK_TIMEOUT",
    "SYNC_HOOK_TOTAL_TIMEOUT",
    "USER_MUTATION_EVENTS",
    "check_event_type",
]

#: Authgear's defaults for ``hook.sync_hook_timeout_seconds`` and ``hook.sync_hook_total_timeout_seconds``.
SYNC_HOOK_TIMEOUT = 5.0
SYNC_HOOK_TOTAL_TIMEOUT = 10.0
#: Seconds Authgear waits for the answer to a non-blocking event (not configurable).
NON_BLOCKING_TIMEOUT = 60.0

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
#: Delivered once, after the change; only the status of the answer is read (a non-2xx one is logged by Authgear).
NON_BLOCKING_EVENTS = (
    "user.created",
    "user.profile.updated",
    "user.authenticated",
    "user.reauthenticated",
    "user.disabled",
    "user.reenabled",
    "user.anonymous.promoted",
    "user.deletion_scheduled",
    "user.deletion_unscheduled",
    "user.deleted",
    "user.anonymization_scheduled",
    "user.anonymization_unscheduled",
    "user.anonymized",
    "usage.alert.triggered",
    *_IDENTITY_EVENTS,
)
EVENT_TYPES = (*sorted(BLOCKING_EVENTS), *NON_BLOCKING_EVENTS)


def check_event_type(name: str) -> str:
    """``name`` when Authgear sends events of that type, else a :class:`ConfigurationError` naming the nearest real
    type: a handler registered under a misspelt type would never run, and every event of the real type would be
    acknowledged unhandled."""
    if name in EVENT_TYPES:
        return name
    close = difflib.get_close_matches(str(name), EVENT_TYPES, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(f"{name!r} is not an event type Authgear sends{hint}")
