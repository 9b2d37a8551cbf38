"""One verified Authgear event, and the answers a blocking one may give."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from ..core import json
from ..user import freeze
from .answers import WebhookAnswer
from .catalogue import BLOCKING_EVENTS, ID_TOKEN_EVENT, JWT_EVENT, USER_MUTATION_EVENTS
from .errors import InvalidWebhookError

__all__ = ["WebhookEvent"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class WebhookEvent:
    """One verified event. Immutable: ``payload`` and ``context`` are read-only mappings, lists are tuples."""

    id: str
    type: str
    seq: int | None
    #: Left out of ``repr``, which may end up in a log: they carry personal data (e-mail, IP address ...).
    payload: Mapping[str, Any] = field(repr=False)
    context: Mapping[str, Any] = field(repr=False)
    #: When Authgear generated the event (``context.timestamp``), or None when absent.
    timestamp: datetime | None

    @classmethod
    def parse(cls, body: bytes) -> WebhookEvent:
        """Parse a body whose signature was already checked; a malformed one raises :class:`InvalidWebhookError`."""
        # Strict JSON: two parsers that keep different copies of a duplicated key would read two events from one
        # signature, non-finite numbers cannot be sent back as JSON, and the nesting bound keeps freeze safe.
        try:
            frozen = freeze(json.loads_object(body))
        except ValueError:
            raise InvalidWebhookError() from None
        event_id, event_type, seq = frozen.get("id"), frozen.get("type"), frozen.get("seq")
        payload, context = frozen.get("payload", _EMPTY), frozen.get("context", _EMPTY)
        if not (isinstance(event_id, str) and event_id and isinstance(event_type, str) and event_type):
            raise InvalidWebhookError()
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not -(2**63) <= seq < 2**63):
            raise InvalidWebhookError()
        if not isinstance(payload, Mapping) or not isinstance(context, Mapping):
            raise InvalidWebhookError()
        return cls(event_id, event_type, seq, payload, context, _timestamp(context.get("timestamp")))

    @property
    def user_id(self) -> str | None:
        """The user concerned: ``context.user_id``, else ``payload.user.id``, else None."""
        candidate = self.context.get("user_id")
        if not isinstance(candidate, str) or not candidate:
            user = self.payload.get("user")
            candidate = user.get("id") if isinstance(user, Mapping) else None
        return candidate if isinstance(candidate, str) and candidate else None

    @property
    def is_blocking(self) -> bool:
        """Whether Authgear waits for this event's answer (and obeys it) before going on."""
        return self.type in BLOCKING_EVENTS

    def allow(
        self,
        *,
        standard_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        roles: Iterable[str] | None = None,
        groups: Iterable[str] | None = None,
        jwt_claims: Mapping[str, Any] | None = None,
        id_token_claims: Mapping[str, Any] | None = None,
        amr: Iterable[str] | None = None,
        rate_limits: Mapping[str, Any] | None = None,
        bot_protection: str | None = None,
    ) -> WebhookAnswer:
        """Let the operation proceed, with the changes this event type supports.

        The answer is checked as Authgear checks it (its schema for this event refuses any key it does not list),
        so an answer Authgear would refuse, and which would abort the user's operation, is never sent. Lists may
        be given as any iterable: each is read once.

        Args:
            standard_attributes, custom_attributes, roles, groups: ``mutations.user`` for the ``user.*``
                blocking events. Each is given WHOLE: an attribute, role or group left out is removed.
            jwt_claims: claims added to the access token (``oidc.jwt.pre_create``); existing claims cannot change.
            id_token_claims: claims added to the ID token (``oidc.id_token.pre_create``); the same rule.
            amr: ``constraints.amr``, authentication methods to require (``authentication.*`` events), among
                Authgear's twelve: ``mfa``, ``otp``, ``pwd``, ``sms`` and the ``x_primary_*``, ``x_secondary_*``
                and ``x_recovery_code`` ones of :data:`~flask_authgear.webhooks.answers.AMR_VALUES`.
            rate_limits: ``rate_limits`` (``authentication.*`` events): ``authentication.general`` and/or
                ``authentication.account_enumeration``, each ``{"weight": <number >= 0>}``.
            bot_protection: ``"always"`` or ``"never"`` (``authentication.pre_initialize`` and
                ``authentication.post_identified`` only).

        Raises:
            ValueError: an option or value this event's answer does not accept, or a claim that would change an
                existing one.
        """
        body: dict[str, Any] = {"is_allowed": True}
        user = {
            name: value
            for name, value in (
                ("standard_attributes", _mapping(standard_attributes, "standard_attributes")),
                ("custom_attributes", _mapping(custom_attributes, "custom_attributes")),
                ("roles", _strings(roles, "roles")),
                ("groups", _strings(groups, "groups")),
            )
            if value is not None
        }
        if user:
            self._require(USER_MUTATION_EVENTS, "user mutations")
            body["mutations"] = {"user": user}
        # Each token event carries its token at payload.<key>.payload and takes it back at mutations.<key>.payload.
        for key, event_type, claims in (("jwt", JWT_EVENT, jwt_claims), ("id_token", ID_TOKEN_EVENT, id_token_claims)):
            if claims is not None:
                self._require({event_type}, f"{key}_claims")
                body["mutations"] = {key: {"payload": self._merged_claims(key, claims)}}
        if amr is not None:
            body["constraints"] = {"amr": _strings(amr, "amr")}
        if rate_limits is not None:
            body["rate_limits"] = _mapping(rate_limits, "rate_limits")
        if bot_protection is not None:
            body["bot_protection"] = {"mode": bot_protection}
        return WebhookAnswer.checked(self.type, body)

    def deny(self, reason: str, title: str) -> WebhookAnswer:
        """Abort the operation: ``{"is_allowed": false, "reason": ..., "title": ...}``. Both are required, and shown
        to the end user."""
        if not (isinstance(reason, str) and reason.strip() and isinstance(title, str) and title.strip()):
            raise ValueError("deny() needs a non-empty reason and title: Authgear shows them to the end user")
        return WebhookAnswer.checked(self.type, {"is_allowed": False, "reason": reason, "title": title})

    def _require(self, events: frozenset[str] | set[str], what: str) -> None:
        if self.type not in events:
            raise ValueError(f"{what} are not supported by {self.type} (only {', '.join(sorted(events))})")

    def _merged_claims(self, key: str, claims: Mapping[str, Any]) -> dict[str, Any]:
        """The event's token payload, whole, with ``claims`` added: Authgear refuses a changed or dropped claim."""
        token = self.payload.get(key)
        existing = token.get("payload") if isinstance(token, Mapping) else None
        if not isinstance(existing, Mapping):
            raise ValueError(f"this {self.type} event carries no token payload to add claims to")
        added = _mapping(claims, "claims") or {}
        for name, value in added.items():
            if name in existing and existing[name] != freeze(value):  # an existing claim keeps its value
                raise ValueError(f"claim {name!r} already exists in the token and cannot be changed")
        return {**existing, **added}


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidWebhookError()
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidWebhookError() from None


def _mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping with string keys")
    return dict(value)


def _strings(value: Iterable[str] | None, what: str) -> list[str] | None:
    """A list of ``value``'s strings, read once: an iterator checked and then sent would be sent empty."""
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"{what} must be a list of non-empty strings")
    items = list(value)
    if not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return items
