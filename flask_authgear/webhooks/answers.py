"""What a blocking hook answers Authgear, and the rule Authgear judges each answer by.

Authgear validates a blocking hook's answer against its event's JSON schema (``pkg/api/event/hook_response.go``,
``pkg/api/event/blocking/*.go``) and aborts the user's operation when it fails: every schema refuses a key it does
not list. :func:`answer_problem` is that schema written out once; the answers this library builds and the answers
the local Authgear server receives are both judged by it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .catalogue import (
    AUTHENTICATION_EVENTS,
    ID_TOKEN_EVENT,
    JWT_EVENT,
    USER_MUTATION_EVENTS,
)

__all__ = ["ACKNOWLEDGED", "AMR_VALUES", "RATE_LIMIT_NAMES", "WebhookAnswer", "allow", "answer_problem", "deny"]

#: The authentication methods an answer's ``constraints.amr`` may require (``pkg/api/model/amr.go``).
AMR_VALUES = frozenset(
    {
        "mfa",
        "otp",
        "pwd",
        "sms",
        "x_primary_oob_otp_email",
        "x_primary_oob_otp_sms",
        "x_primary_password",
        "x_recovery_code",
        "x_secondary_oob_otp_email",
        "x_secondary_oob_otp_sms",
        "x_secondary_password",
        "x_secondary_totp",
    }
)
#: The rate limits an answer's ``rate_limits`` may weigh, each ``{"weight": <number >= 0>}``.
RATE_LIMIT_NAMES = frozenset({"authentication.general", "authentication.account_enumeration"})
BOT_PROTECTION_MODES = frozenset({"always", "never"})

#: What an allowing answer of each blocking event may carry beside ``is_allowed``.
ANSWER_FIELDS: Mapping[str, frozenset[str]] = {
    **dict.fromkeys(USER_MUTATION_EVENTS | {JWT_EVENT, ID_TOKEN_EVENT}, frozenset({"mutations"})),
    **dict.fromkeys(AUTHENTICATION_EVENTS, frozenset({"constraints", "bot_protection", "rate_limits"})),
    "authentication.pre_authenticated": frozenset({"constraints", "rate_limits"}),
}


def thaw(value: Any) -> Any:
    """A plain JSON-ready copy of a frozen or user-given structure."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


class WebhookAnswer:
    """What a blocking hook answers. Render with :meth:`to_dict` or :meth:`to_json`."""

    __slots__ = ("_body",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        try:
            self._body = json.dumps(thaw(body), separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:  # a set, an object, NaN ...: nothing Authgear could read
            raise ValueError(f"a webhook answer must be JSON: {exc}") from None

    @classmethod
    def checked(cls, event_type: str, body: Mapping[str, Any]) -> WebhookAnswer:
        """The answer ``body`` to an ``event_type`` event, refused with ValueError when Authgear would refuse it."""
        answer = cls(body)
        problem = answer_problem(event_type, answer.to_dict())
        if problem is not None:
            raise ValueError(problem)
        return answer

    def to_dict(self) -> dict[str, Any]:
        """A fresh copy of the JSON body."""
        out: dict[str, Any] = json.loads(self._body)
        return out

    def to_json(self) -> bytes:
        return self._body

    def headers(self) -> list[tuple[str, str]]:
        """The headers of the answer, as :meth:`WebhookError.headers` are an error's: JSON that no cache keeps."""
        return [("Content-Type", "application/json"), ("Cache-Control", "no-store")]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookAnswer) and other._body == self._body

    def __repr__(self) -> str:
        return f"WebhookAnswer({self._body.decode()})"


#: The answer to a non-blocking event: Authgear only reads the status.
ACKNOWLEDGED = WebhookAnswer({})


def allow() -> WebhookAnswer:
    """``{"is_allowed": true}``. For mutations, constraints and the like, use :meth:`WebhookEvent.allow`."""
    return WebhookAnswer({"is_allowed": True})


def deny(reason: str, title: str) -> WebhookAnswer:
    """``{"is_allowed": false, "reason": ..., "title": ...}``; both are shown to the end user, and required."""
    if not (isinstance(reason, str) and reason.strip() and isinstance(title, str) and title.strip()):
        raise ValueError("deny() needs a non-empty reason and title: Authgear shows them to the end user")
    return WebhookAnswer({"is_allowed": False, "reason": reason, "title": title})


def answer_problem(event_type: str, answer: Any) -> str | None:
    """Why Authgear would refuse ``answer`` (parsed JSON) to a ``event_type`` event, or None when it accepts it."""
    fields = ANSWER_FIELDS.get(event_type)
    if fields is None:
        return f"{event_type} is not a blocking event: Authgear reads no answer to it"
    if not isinstance(answer, dict):
        return "the answer must be a JSON object"
    if not isinstance(answer.get("is_allowed"), bool):
        return "the answer must carry is_allowed: true or false"
    if not answer["is_allowed"]:
        extra = sorted(set(answer) - {"is_allowed", "title", "reason"})
        if extra:
            return f"a refusal carries only title and reason, not {', '.join(extra)}"
        wrong = [name for name in ("title", "reason") if name in answer and not isinstance(answer[name], str)]
        return f"{wrong[0]} must be a string" if wrong else None
    extra = sorted(set(answer) - {"is_allowed"} - fields)
    if extra:
        accepted = ", ".join(sorted(fields))
        return f"{event_type} does not accept {', '.join(extra)} in its answer (only {accepted})"
    for name in sorted(set(answer) - {"is_allowed"}):
        problem = _FIELD_CHECKS[name](answer[name])
        if problem is not None:
            return problem
    return None


def _object(value: Any, what: str, keys: frozenset[str] | None = None) -> str | None:
    """None when ``value`` is a JSON object whose keys are among ``keys`` (any, when None)."""
    if not isinstance(value, dict):
        return f"{what} must be a JSON object"
    extra = sorted(set(value) - keys) if keys is not None else []
    return f"{what} does not accept {', '.join(extra)} (only {', '.join(sorted(keys or ()))})" if extra else None


#: The parts of ``mutations``, and the members of each that must be JSON objects.
_MUTATION_PARTS = {"user": ("standard_attributes", "custom_attributes"), "jwt": ("payload",), "id_token": ("payload",)}


def _mutations(value: Any) -> str | None:
    if problem := _object(value, "mutations", frozenset(_MUTATION_PARTS)):
        return problem
    for part, members in _MUTATION_PARTS.items():
        if part not in value:
            continue
        if problem := _object(value[part], f"mutations.{part}"):
            return problem
        for member in members:
            if member in value[part] and (problem := _object(value[part][member], f"mutations.{part}.{member}")):
                return problem
    return None


def _constraints(value: Any) -> str | None:
    problem = _object(value, "constraints", frozenset({"amr"}))
    if problem is None and "amr" in value:
        amr = value["amr"]
        if not isinstance(amr, list):
            return "constraints.amr must be a JSON array"
        unknown = sorted({str(v) for v in amr if not (isinstance(v, str) and v in AMR_VALUES)})
        if unknown:
            return f"constraints.amr accepts only {', '.join(sorted(AMR_VALUES))}; not {', '.join(unknown)}"
    return problem


def _bot_protection(value: Any) -> str | None:
    problem = _object(value, "bot_protection", frozenset({"mode"}))
    if problem is None and "mode" in value and value["mode"] not in BOT_PROTECTION_MODES:
        return 'bot_protection.mode must be "always" or "never"'
    return problem


def _rate_limits(value: Any) -> str | None:
    if problem := _object(value, "rate_limits", RATE_LIMIT_NAMES):
        return problem
    for name, requirement in value.items():
        if problem := _object(requirement, f"rate_limits.{name}", frozenset({"weight"})):
            return problem
        weight = requirement.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not (0 <= weight < math.inf):
            return f"rate_limits.{name}.weight must be a number >= 0"
    return None


_FIELD_CHECKS = {
    "mutations": _mutations,
    "constraints": _constraints,
    "bot_protection": _bot_protection,
    "rate_limits": _rate_limits,
}
