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
from typing import Any, TypeGuard

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
from .refusals import Reason, TokenError, fingerprint, first_refusal

__all__ = ["JWTVerifier", "is_machine_token", "is_numeric_date", "user_from_claims"]

logger = logging.getLogger("flask_authgear")

_MAX_TIME = 2**53  # far beyond any real date, and small enough to add to a float without overflow


#: Claims that are optional and, when present, not after now (leeway included), with the reason that refuses them.
_NOT_AFTER_NOW = (("nbf", Reason.NBF), ("iat", Reason.IAT))


def is_numeric_date(value: Any) -> bool:
    """A JWT NumericDate (RFC 7519): a finite int or float, not a bool, within a sane range."""
    return (type(value) is int or (type(value) is float and math.isfinite(value))) and -_MAX_TIME < value < _MAX_TIME


def _is_str_list(value: Any) -> TypeGuard[list[str] | tuple[str, ...]]:
    if not isinstance(value, list | tuple):
        return False
    for item in value:  # noqa: SIM110 - a loop, not all() over a generator: this runs for every new token
        if type(item) is not str:
            return False
    return True


def is_machine_token(claims: Mapping[str, Any]) -> bool:
    """Whether verified claims have the shape of Authgear's client-credentials tokens (``EncodeClientAccessToken``):
    ``sub`` is ``client_id_`` and the token's ``client_id``, and no user claim (``auth_time``, ``amr``,
    ``https://authgear.com/claims/user/*``) is present. A token that claims the shape without matching it is not a
    machine's."""
    client_id = claims.get("client_id")
    if type(client_id) is not str or not client_id or claims.get("sub") != MACHINE_SUBJECT_PREFIX + client_id:
        return False
    return not ("auth_time" in claims or "amr" in claims or any(name.startswith(USER_CLAIM_PREFIX) for name in claims))


def user_from_claims(claims: Mapping[str, Any]) -> AuthgearUser:
    """The user (or machine) of claims that keep :meth:`JWTVerifier.claim_refusals` (raises :class:`TokenError` for
    mistyped user claims)."""
    sub: str = claims["sub"]
    # One prefix test on the path of every new user token; the whole shape only for a candidate machine.
    if sub.startswith(MACHINE_SUBJECT_PREFIX) and is_machine_token(claims):
        return AuthgearUser(id=sub, claims=claims, source="jwt", is_machine=True)
    auth_time = claims.get("auth_time")
    try:
        authenticated_at = datetime.fromtimestamp(auth_time, timezone.utc) if auth_time is not None else None
    except (OverflowError, ValueError, OSError, TypeError):
        raise TokenError(Reason.AUTH_TIME) from None
    is_anonymous = claims.get(CLAIM_IS_ANONYMOUS, False)
    is_verified = claims.get(CLAIM_IS_VERIFIED, False)
    can_reauthenticate = claims.get(CLAIM_CAN_REAUTHENTICATE, False)
    roles = claims.get(CLAIM_ROLES, ())
    amr = claims.get("amr", ())
    if not (
        type(is_anonymous) is bool
        and type(is_verified) is bool
        and type(can_reauthenticate) is bool
        and _is_str_list(roles)
        and _is_str_list(amr)
    ):
        raise TokenError(Reason.CLAIM_TYPE)
    return AuthgearUser(
        id=sub,
        is_anonymous=is_anonymous,
        is_verified=is_verified,
        can_reauthenticate=can_reauthenticate,
        roles=frozenset(roles),
        amr=tuple(amr),
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
            self.cache.pop(token)
        self.cache_misses += 1
        try:
            claims, key = self.jws.verify(token)
            refused = self.claim_refusals(claims, self._clock())
            if refused:
                raise first_refusal(refused, self._audience_error)
            user = user_from_claims(claims)
        except TokenError as exc:
            # Counted and logged by reason, with a fingerprint that tells tokens apart: never the token itself,
            # nor its kid (attacker input).
            self.rejections[exc.reason.value] += 1
            logger.info("JWT access token refused: %s (token sha256:%s)", exc.reason.value, fingerprint(token))
            raise
        self.cache[token] = (user, claims["exp"] + self._leeway, key)
        return user

    def claim_refusals(self, claims: Mapping[str, Any], now: float) -> dict[str, Reason]:
        """Every registered-claim rule that ``claims`` break, by claim, in the order they apply (the first is the
        token's refusal); empty when they keep them all. All are listed so that a tool can report each one."""
        refused = {}
        exp: Any = claims.get("exp")
        if not is_numeric_date(exp):
            refused["exp"] = Reason.EXP
        elif now >= exp + self._leeway:  # "on or after" exp is expired (RFC 7519 4.1.4)
            refused["exp"] = Reason.EXPIRED
        for name, reason in _NOT_AFTER_NOW:
            if name in claims and (not is_numeric_date(claims[name]) or claims[name] > now + self._leeway):
                refused[name] = reason
        if claims.get("iss") != self._issuer:
            refused["iss"] = Reason.ISS
        aud = claims.get("aud")
        audiences = [aud] if type(aud) is str else aud
        if not _is_str_list(audiences) or self._audience.isdisjoint(audiences):
            refused["aud"] = Reason.AUD
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            refused["sub"] = Reason.SUB
        if "auth_time" in claims and not is_numeric_date(claims["auth_time"]):
            refused["auth_time"] = Reason.AUTH_TIME
        return refused
