"""What a blocking hook answers Authgear, and the rule Authgear judges each answer by.

Authgear validates a blocking hook's answer against its event's JSON schema (``pkg/api/event/hook_response.go``,
``pkg/api/event/blocking/*.go``) and aborts the user's operation when it fails: every schema refuses a key it does
not list. :func:`answer_problem` is those schemas written out once, as data; the answers this library builds and
the answers the local Authgear server receives are both judged by it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .catalogue import AUTHENTICATION_EVENTS, ID_TOKEN_EVENT, JWT_EVENT, USER_MUTATION_EVENTS

__all__ = ["ACKNOWLEDGED", "AMR_VALUES", "RATE_LIMIT_NAMES", "WebhookAnswer", "answer_problem"]

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


def _plain(value: Any) -> Any:
    """A read-only mapping (an event's payload) as JSON encodes it; anything else is not JSON."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class WebhookAnswer:
    """What a blocking hook answers: built by :meth:`WebhookEvent.allow` and :meth:`WebhookEvent.deny`, or by hand
    with :meth:`checked`. Render with :meth:`to_dict` or :meth:`to_json`."""

    __slots__ = ("_body",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        try:
            self._body = json.dumps(body, default=_plain, separators=(",", ":"), allow_nan=False).encode()
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


def answer_problem(event_type: str, answer: Any) -> str | None:
    """Why Authgear would refuse ``answer`` (parsed JSON) to a ``event_type`` event, or None when it accepts it."""
    fields = _ANSWER_FIELDS.get(event_type)
    if fields is None:
        return f"{event_type} is not a blocking event: Authgear reads no answer to it"
    if not isinstance(answer, dict):
        return "the answer must be a JSON object"
    if not isinstance(answer.get("is_allowed"), bool):
        return "the answer must carry is_allowed: true or false"
    rest = {name: value for name, value in answer.items() if name != "is_allowed"}
    if not answer["is_allowed"]:
        if extra := sorted(rest.keys() - {"title", "reason"}):
            return f"a refusal carries only title and reason, not {', '.join(extra)}"
        wrong = [name for name in ("title", "reason") if name in rest and not isinstance(rest[name], str)]
        return f"{wrong[0]} must be a string" if wrong else None
    if extra := sorted(rest.keys() - fields):
        return f"{event_type} does not accept {', '.join(extra)} in its answer (only {', '.join(sorted(fields))})"
    problems = (_ALLOWING[name](rest[name], name) for name in sorted(rest))
    return next((problem for problem in problems if problem), None)


#: Why Authgear refuses a value found at a place of an answer (``constraints.amr``), or None.
_Check = Callable[[Any, str], "str | None"]


def _members(checks: Mapping[str, _Check], *, closed: bool = True) -> _Check:
    """A JSON object whose members are checked when present; ``closed`` refuses any other member."""

    def check(value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} must be a JSON object"
        if closed and (extra := sorted(value.keys() - checks.keys())):
            return f"{where} does not accept {', '.join(extra)} (only {', '.join(sorted(checks))})"
        for name in sorted(value.keys() & checks.keys()):
            if problem := checks[name](value[name], f"{where}.{name}"):
                return problem
        return None

    return check


def _among(allowed: frozenset[str], *, array: bool = False) -> _Check:
    """One of ``allowed``, or with ``array`` a JSON array of them."""

    def check(value: Any, where: str) -> str | None:
        if not array:
            if isinstance(value, str) and value in allowed:
                return None
            return f"{where} must be " + " or ".join(f'"{v}"' for v in sorted(allowed))
        if not isinstance(value, list):
            return f"{where} must be a JSON array"
        unknown = sorted({str(v) for v in value if not (isinstance(v, str) and v in allowed)})
        return f"{where} accepts only {', '.join(sorted(allowed))}; not {', '.join(unknown)}" if unknown else None

    return check


def _weight(value: Any, where: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        return f"{where} must be a number >= 0"
    return None


#: Any JSON object.
_OBJECT = _members({}, closed=False)
#: The members an allowing answer may carry beside ``is_allowed``, each as Authgear's schemas check it.
_ALLOWING: Mapping[str, _Check] = {
    "mutations": _members(
        {
            "user": _members({"standard_attributes": _OBJECT, "custom_attributes": _OBJECT}, closed=False),
            "jwt": _members({"payload": _OBJECT}, closed=False),
            "id_token": _members({"payload": _OBJECT}, closed=False),
        }
    ),
    "constraints": _members({"amr": _among(AMR_VALUES, array=True)}),
    "bot_protection": _members({"mode": _among(frozenset({"always", "never"}))}),
    "rate_limits": _members(dict.fromkeys(RATE_LIMIT_NAMES, _members({"weight": _weight}))),
}
#: Which of them each blocking event's answer may carry.
_ANSWER_FIELDS: Mapping[str, frozenset[str]] = {
    **dict.fromkeys(USER_MUTATION_EVENTS | {JWT_EVENT, ID_TOKEN_EVENT}, frozenset({"mutations"})),
    **dict.fromkeys(AUTHENTICATION_EVENTS, frozenset({"constraints", "bot_protection", "rate_limits"})),
    "authentication.pre_authenticated": frozenset({"constraints", "rate_limits"}),
}
