"""JWT access tokens: Authgear's claim rules, the user they prove, and the cache of verified tokens.

The compact form, header and signature are :mod:`flask_authgear.core.jose`'s job; this module starts from a
payload whose signature verified.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..config import Settings
from ..user import (
    CLAIM_CAN_REAUTHENTICATE,
    CLAIM_IS_ANONYMOUS,
    CLAIM_IS_VERIFIED,
    CLAIM_ROLES,
    MACHINE_SUBJECT_PREFIX,
    USER_CLAIM_PREFIX,
    AuthgearUser,
)
from .jose import JWSVerifier
from .jwks import JWKSCache, PublicKey
from .lru import LRU
from .refusals import Reason, TokenError, fingerprint

__all__ = ["JWTVerifier", "check_auth_time", "check_sub", "is_machine_token", "is_numeric_date"]

logger = logging.getLogger("flask_authgear")

_MAX_TIME = 2**53  # far beyond any real date, and small enough to add to a float without overflow


def is_numeric_date(value: Any) -> bool:
    """A JWT NumericDate (RFC 7519): a finite int or float, not a bool, within a sane range."""
    return (type(value) is int or (type(value) is float and math.isfinite(value))) and -_MAX_TIME < value < _MAX_TIME


def _bool_claim(claims: Mapping[str, Any], name: str) -> bool:
    value = claims.get(name, False)
    if type(value) is not bool:
        raise TokenError(Reason.CLAIM_TYPE)
    return value


def _str_list_claim(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    if name not in claims:
        return ()
    value = claims[name]
    if not isinstance(value, list | tuple):
        raise TokenError(Reason.CLAIM_TYPE)
    for item in value:
        if type(item) is not str:
            raise TokenError(Reason.CLAIM_TYPE)
    return tuple(value)


def check_sub(claims: Mapping[str, Any]) -> None:
    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        raise TokenError(Reason.SUB)


def check_auth_time(claims: Mapping[str, Any]) -> None:
    if "auth_time" in claims and not is_numeric_date(claims["auth_time"]):
        raise TokenError(Reason.AUTH_TIME)


def is_machine_token(claims: Mapping[str, Any]) -> bool:
    """Whether verified claims have the shape of Authgear's client-credentials tokens (``EncodeClientAccessToken``):
    ``sub`` is ``client_id_`` and the token's ``client_id``, and no user claim (``auth_time``, ``amr``,
    ``https://authgear.com/claims/user/*``) is present. A token that claims the shape without matching it is not a
    machine's."""
    client_id = claims.get("client_id")
    if type(client_id) is not str or not client_id or claims.get("sub") != MACHINE_SUBJECT_PREFIX + client_id:
        return False
    return not ("auth_time" in claims or "amr" in claims or any(name.startswith(USER_CLAIM_PREFIX) for name in claims))


def _user_from_claims(claims: Mapping[str, Any]) -> AuthgearUser:
    """Build the user (or machine) from claims that passed :meth:`JWTVerifier.check_claims`."""
    sub: str = claims["sub"]
    # One prefix test on the path of every new user token; the whole shape only for a candidate machine.
    if sub.startswith(MACHINE_SUBJECT_PREFIX) and is_machine_token(claims):
        return AuthgearUser(id=sub, claims=claims, source="jwt", is_machine=True)
    auth_time = claims.get("auth_time")
    try:
        authenticated_at = datetime.fromtimestamp(auth_time, tz=timezone.utc) if auth_time is not None else None
    except (OverflowError, ValueError, OSError, TypeError):
        raise TokenError(Reason.AUTH_TIME) from None
    return AuthgearUser(
        id=sub,
        is_anonymous=_bool_claim(claims, CLAIM_IS_ANONYMOUS),
        is_verified=_bool_claim(claims, CLAIM_IS_VERIFIED),
        can_reauthenticate=_bool_claim(claims, CLAIM_CAN_REAUTHENTICATE),
        roles=frozenset(_str_list_claim(claims, CLAIM_ROLES)),
        amr=_str_list_claim(claims, "amr"),
        authenticated_at=authenticated_at,
        claims=claims,  # AuthgearUser stores a read-only deep copy
        source="jwt",
    )


#: What the verified-token cache keeps per token: the user, the time it expires (leeway included) and the
#: key that verified it.
_CacheEntry = tuple[AuthgearUser, float, PublicKey]


class JWTVerifier:
    """Verifies Authgear JWT access tokens and turns them into :class:`AuthgearUser` objects.

    A token verified once is remembered by its exact text (LRU, ``token_cache_size`` entries) until its
    ``exp`` (leeway included), and only while the key that signed it is still the same key in the JWKS: a
    repeated token then costs a dictionary lookup instead of a signature check. Failures are never remembered.
    """

    def __init__(self, settings: Settings, jwks: JWKSCache, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.jwks = jwks
        self.jws = JWSVerifier(settings, jwks)
        self._clock = clock
        self._audience = frozenset(settings.audience)
        # Configured values, never the token's: a client holding a token for another API learns which to ask for.
        self._audience_error = f"{Reason.AUD.description[:-1]}; accepted audiences: {', '.join(settings.audience)}."
        self._issuer = settings.issuer
        self._leeway = settings.leeway
        #: The verified-token cache (stores nothing when ``token_cache_size`` is 0).
        self.cache: LRU[str, _CacheEntry] = LRU(settings.token_cache_size)
        self.cache_hits = 0
        self.cache_misses = 0
        #: Tokens refused, by reason (``expired``, ``signature``, ``aud`` ...), for monitoring.
        self.rejections: Counter[str] = Counter()

    def verify(self, token: str) -> AuthgearUser:
        """Return the token's user or raise :class:`InvalidTokenError` (or 503 when no keys can be had)."""
        entry = self.cache.get(token)
        if entry is not None:
            user, expires, key = entry
            if self._clock() < expires and self.jwks.still_current(key):
                self.cache_hits += 1
                return user
            self.cache.pop(token, None)
        self.cache_misses += 1
        try:
            entry = self._verify(token)
        except TokenError as exc:
            # Counted and logged by reason, with a fingerprint that tells tokens apart: never the token itself,
            # nor its kid (attacker input).
            self.rejections[exc.reason.value] += 1
            logger.info("JWT access token refused: %s (token sha256:%s)", exc.reason.value, fingerprint(token))
            raise
        self.cache[token] = entry
        return entry[0]

    def _verify(self, token: str) -> _CacheEntry:
        claims, key = self.jws.verify(token)
        expires = self.check_claims(claims)
        return _user_from_claims(claims), expires, key

    def check_header(self, header: Mapping[str, Any]) -> PublicKey:
        """Apply the header rules and return the key to verify with (see :class:`JWSVerifier`)."""
        return self.jws.check_header(header)

    def check_claims(self, claims: Mapping[str, Any]) -> float:
        """Apply the registered-claim rules; return the time after which the token is expired."""
        now = self._clock()
        expires = self.check_exp(claims, now)
        self.check_not_future(claims, "nbf", now)
        self.check_not_future(claims, "iat", now)
        self.check_iss(claims)
        self.check_aud(claims)
        check_sub(claims)
        check_auth_time(claims)
        return expires

    # Each claim rule on its own, so that a tool can report every rule a token breaks, not only the first.

    def check_exp(self, claims: Mapping[str, Any], now: float) -> float:
        exp: float = claims.get("exp")  # type: ignore[assignment]
        if not is_numeric_date(exp):
            raise TokenError(Reason.EXP)
        expires = exp + self._leeway
        if now >= expires:  # "on or after" exp is expired (RFC 7519 4.1.4)
            raise TokenError(Reason.EXPIRED)
        return expires

    def check_not_future(self, claims: Mapping[str, Any], name: str, now: float) -> None:
        """``nbf`` and ``iat``: optional, and when present not after now (leeway included)."""
        if name in claims:
            value = claims[name]
            if not is_numeric_date(value) or value > now + self._leeway:
                raise TokenError(Reason[name.upper()])

    def check_iss(self, claims: Mapping[str, Any]) -> None:
        iss = claims.get("iss")
        if type(iss) is not str or iss != self._issuer:
            raise TokenError(Reason.ISS)

    def check_aud(self, claims: Mapping[str, Any]) -> None:
        aud = claims.get("aud")
        if type(aud) is str:
            aud = [aud]
        if not isinstance(aud, list) or not aud:
            raise TokenError(Reason.AUD, self._audience_error)
        for audience in aud:
            if type(audience) is not str:
                raise TokenError(Reason.AUD, self._audience_error)
        if self._audience.isdisjoint(aud):
            raise TokenError(Reason.AUD, self._audience_error)

    @staticmethod
    def to_user(claims: Mapping[str, Any]) -> AuthgearUser:
        """The user of claims that passed :meth:`check_claims` (raises :class:`TokenError` for mistyped ones)."""
        return _user_from_claims(claims)
