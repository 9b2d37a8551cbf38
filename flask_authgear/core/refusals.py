"""Why an access token is refused: the one defined set of reasons, and the error that carries one.

Each :class:`Reason` is written once, with everything said about it: its code (logs, ``health()`` counters,
``verify --json``), the ``error_description`` a client is answered (fixed, header-safe text that never echoes
the token), what it means in words, and how to fix it, naming the setting when configuration can. The JOSE
rules (:mod:`.jose`) and the claim rules (:mod:`.jwt`) raise them; responses, logs, counters and
``flask-authgear verify`` read them from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum

from ..errors import InvalidTokenError

__all__ = ["Reason", "TokenError", "fingerprint", "first_refusal"]


class Reason(StrEnum):
    """A refusal: the member is its code (a ``str``); ``description``, ``meaning``, ``fix`` and ``setting`` say
    the rest. ``setting`` is the :class:`~flask_authgear.Settings` field that fixes it, when one can."""

    description: str
    meaning: str
    fix: str
    setting: str | None

    def __new__(cls, code: str, description: str, meaning: str, fix: str = "", setting: str | None = None) -> Reason:
        member = str.__new__(cls, code)
        member._value_ = code
        member.description = description
        member.meaning = meaning
        member.fix = fix
        member.setting = setting
        return member

    # -- the compact form and the header (core/jose.py) -------------------------------------------------------
    MALFORMED = (
        "malformed",
        "The access token is malformed.",
        "the token is not a well-formed compact JWT",
        "send the access token exactly as Authgear issued it",
    )
    OVERSIZED = (
        "oversized",
        "The access token is too large.",
        "the token is longer than the largest header accepted",
        "accept longer tokens",
        "max_header_bytes",
    )
    ALG = (
        "alg",
        "The access token is signed with an algorithm that is not allowed.",
        "the signing algorithm is not allowed, or not the key's",
        "allow the algorithm the project signs with",
        "algorithms",
    )
    HEADER = (
        "header",
        "The access token header carries a member that is not allowed.",
        "the header carries a member that could point at other keys (jwk, jku, x5u, x5c) or an unsupported "
        "extension (crit, b64, zip, enc)",
    )
    TYP = (
        "typ",
        "The token is not an access token.",
        "the token is not an access token (typ must be at+jwt): an ID token?",
        "send the access token, not the ID token",
    )
    KID = ("kid", "The access token header has no usable key ID.", "the header has no usable kid")
    UNKNOWN_KID = (
        "unknown_kid",
        "The access token is signed by a key this application does not know.",
        "the key that signed the token is not in the project's JWKS: a token of another project or environment?",
        "point at the project that issued the token",
        "endpoint",
    )
    SIGNATURE = (
        "signature",
        "The access token signature is invalid.",
        "the signature does not match",
        "send the token unaltered, as Authgear issued it",
    )
    # -- the claims (core/jwt.py) ---------------------------------------------------------------------------
    EXP = ("exp", "The access token has no valid expiry time.", "the exp claim is missing or not a number")
    EXPIRED = (
        "expired",
        "The access token has expired.",
        "the token has expired",
        "get a fresh access token (refresh it)",
    )
    NBF = (
        "nbf",
        "The access token is not valid yet.",
        "the token is not valid yet (nbf)",
        "correct the clock, or allow for clock skew",
        "leeway",
    )
    IAT = (
        "iat",
        "The access token is issued in the future.",
        "the token claims to be issued in the future (iat)",
        "correct the clock, or allow for clock skew",
        "leeway",
    )
    ISS = (
        "iss",
        "The access token is from another issuer.",
        "the issuer is not the expected one",
        "expect the issuer the project's tokens carry, such as its custom domain",
        "issuer",
    )
    AUD = (
        "aud",
        "The access token is not meant for this application.",
        "the audience is not an accepted one",
        "accept an audience the token carries",
        "audience",
    )
    SUB = ("sub", "The access token has no subject.", "the sub claim is missing or empty")
    AUTH_TIME = ("auth_time", "The access token has an invalid auth_time.", "the auth_time claim is not a valid time")
    CLAIM_TYPE = (
        "claim_type",
        "The access token has a user claim of the wrong type.",
        "an Authgear user claim has the wrong type",
    )


class TokenError(InvalidTokenError):
    """An invalid token (401 ``invalid_token``) refused for ``reason``, whose description it answers unless a
    rule gives a more precise one (written by this library, never taken from the token)."""

    def __init__(self, reason: Reason, description: str | None = None) -> None:
        super().__init__(reason.description if description is None else description)
        self.reason = reason


def first_refusal(refused: Mapping[str, Reason], aud_description: str | None = None) -> TokenError:
    """The error for the first rule broken in ``refused`` (the answer of a set of rules, never empty);
    ``aud_description`` answers :attr:`Reason.AUD` more precisely."""
    reason = next(iter(refused.values()))
    return TokenError(reason, aud_description if reason is Reason.AUD else None)


def fingerprint(token: str) -> str:
    """A short name for a token in logs: the start of its SHA-256, which tells two tokens apart and, unlike any
    fragment of the token, can never be sent back as one."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]
