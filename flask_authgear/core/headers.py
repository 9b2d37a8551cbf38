"""Authgear's ``X-Authgear-*`` answer, read in one place: the resolver's response headers, the headers a
trusted reverse proxy copied from it, and the CLI's resolver check all go through :func:`parse_answer`.

What Authgear sends (its resolver's code, not only its docs): ``X-Authgear-Session-Valid`` is ``true`` or
``false``, or absent together with every other header (no credentials, or an invalid bearer token); roles
are joined by ``,`` and absent when there are none; amr values are joined by a space (the written spec says
comma, both are read); authenticated-at is unix seconds or absent. Only ``Session-Valid: true``
authenticates. Anything Authgear never sends raises :class:`MalformedAnswer`, which callers turn into 503:
the answer is not understood, so neither "authenticated" nor "not authenticated" may be concluded.

That includes a value holding an unexpanded Caddy placeholder such as
``{http.reverse_proxy.header.X-Authgear-User-Roles}``: Caddy before 2.9 forwards that text literally for a
header the resolver did not send, which would otherwise read as a role named after the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone

from ..user import NO_CLAIMS, AuthgearUser, Source

__all__ = ["ANSWER_HEADERS", "ANSWER_PREFIX", "Answer", "MalformedAnswer", "answer_headers", "parse_answer"]

#: Every header Authgear's resolver may answer with; a proxy must overwrite each one of them.
ANSWER_HEADERS = (
    "x-authgear-session-valid",
    "x-authgear-user-id",
    "x-authgear-user-anonymous",
    "x-authgear-user-verified",
    "x-authgear-user-can-reauthenticate",
    "x-authgear-user-roles",
    "x-authgear-session-amr",
    "x-authgear-session-authenticated-at",
)
#: What the names of an answer's headers begin with (lowercase).
ANSWER_PREFIX = "x-authgear-"

_USER_ID = re.compile(r"[\x21-\x7e]{1,256}")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_LIST_SEPARATORS = re.compile(r"[\s,]+")
#: A Caddy placeholder, ``{namespace.name}``; Authgear's values (ids, roles, amr, flags) never hold one.
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")

#: An answer: the user, or None for "not authenticated".
Answer = AuthgearUser | None


class MalformedAnswer(ValueError):
    """The resolver (or proxy) answered something Authgear never sends; the message names no value."""


def answer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``X-Authgear-*`` headers of a response, by lowercase name; every other header is dropped."""
    return {name.lower(): value for name, value in headers.items() if name.lower().startswith(ANSWER_PREFIX)}


def _flag(headers: Mapping[str, str], name: str) -> bool:
    value = headers.get(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise MalformedAnswer(f"{name} is not true or false")


def parse_answer(headers: Mapping[str, str], source: Source = "resolver") -> Answer:
    """Turn ``X-Authgear-*`` headers (lowercase names) into a user, None (not authenticated), or raise.

    Raises :class:`MalformedAnswer` for anything Authgear does not send, so callers fail closed with 503.
    """
    # Other X-Authgear-* names (a future Authgear header, a client's invention) are simply not read.
    if any(_PLACEHOLDER.search(headers[name]) for name in ANSWER_HEADERS if name in headers):
        raise MalformedAnswer("an X-Authgear-* header holds an unexpanded proxy placeholder")
    valid = headers.get("x-authgear-session-valid")
    if valid is None:
        if any(name in ANSWER_HEADERS for name in headers):
            raise MalformedAnswer("user headers without X-Authgear-Session-Valid")
        return None  # no credentials, or an invalid bearer token: Authgear sends no header at all
    if valid == "false":
        return None
    if valid != "true":
        raise MalformedAnswer("X-Authgear-Session-Valid is neither true nor false")
    user_id = headers.get("x-authgear-user-id")
    if user_id is None or _USER_ID.fullmatch(user_id) is None:
        raise MalformedAnswer("a valid session without a usable user id")
    roles = frozenset(r.strip() for r in headers.get("x-authgear-user-roles", "").split(",") if r.strip())
    amr = tuple(a for a in _LIST_SEPARATORS.split(headers.get("x-authgear-session-amr", "")) if a)
    authenticated_at = None
    at = headers.get("x-authgear-session-authenticated-at")
    if at is not None:
        if _UNIX_SECONDS.fullmatch(at) is None:
            raise MalformedAnswer("X-Authgear-Session-Authenticated-At is not unix seconds")
        try:
            authenticated_at = datetime.fromtimestamp(int(at), tz=timezone.utc)
        except (OverflowError, ValueError, OSError):
            raise MalformedAnswer("X-Authgear-Session-Authenticated-At is out of range") from None
    return AuthgearUser(
        id=user_id,
        is_anonymous=_flag(headers, "x-authgear-user-anonymous"),
        is_verified=_flag(headers, "x-authgear-user-verified"),
        can_reauthenticate=_flag(headers, "x-authgear-user-can-reauthenticate"),
        roles=roles,
        amr=amr,
        authenticated_at=authenticated_at,
        claims=NO_CLAIMS,
        source=source,
    )
