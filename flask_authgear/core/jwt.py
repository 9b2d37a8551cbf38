"""JWT access-token verification: strict parsing, joserfc signature checks, Authgear's claim rules.

The compact form is parsed here, strictly, before any key is touched: exactly three canonical base64url
segments, UTF-8 JSON objects without duplicate keys or non-finite numbers. The signature is then checked by
joserfc's algorithm with a key from the project's JWKS, chosen by ``kid`` and restricted to the configured
algorithms. Header members that would point at other keys (``jwk``, ``jku``, ``x5u``, ``x5c``) and
extensions we do not implement (``crit``, ``b64``) reject the token outright.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from ..config import Settings
from ..errors import InvalidTokenError
from ..user import (
    CLAIM_CAN_REAUTHENTICATE,
    CLAIM_IS_ANONYMOUS,
    CLAIM_IS_VERIFIED,
    CLAIM_ROLES,
    AuthgearUser,
)
from .jwks import JWKSCache, PublicKey

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_MAX_KID = 256


class TokenError(InvalidTokenError):
    """An invalid token, with a short machine-readable ``reason`` for logs and the CLI (never in responses)."""

    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(description)
        self.reason = reason


def b64url_decode(segment: str) -> bytes:
    """Decode one canonical base64url segment (no padding, no other alphabet, no stray bits)."""
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise TokenError("malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed") from None
    # Non-zero unused bits in the last character would give one value several spellings.
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise TokenError("malformed")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


_decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JOSE JSON object strictly: UTF-8, an object, no duplicate members, finite numbers."""
    try:
        value = _decoder.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise TokenError("malformed") from None
    if not isinstance(value, dict):
        raise TokenError("malformed")
    return value


def split_token(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split and decode a compact JWS: (header, claims, signing input, signature). No key involved."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed")
    header_seg, payload_seg, signature_seg = parts
    header = json_object(b64url_decode(header_seg))
    claims = json_object(b64url_decode(payload_seg))
    signature = b64url_decode(signature_seg)
    return header, claims, f"{header_seg}.{payload_seg}".encode("ascii"), signature


def looks_like_jwt(token: str) -> bool:
    """A cheap shape test used by auto mode to pick local verification over the resolver."""
    return token.count(".") == 2 and token.startswith("eyJ")


_MAX_TIME = 2**53  # far beyond any real date, and small enough to add to a float without overflow


def _is_number(value: Any) -> bool:
    return (type(value) is int or (type(value) is float and math.isfinite(value))) and -_MAX_TIME < value < _MAX_TIME


def _bool_claim(claims: Mapping[str, Any], name: str) -> bool:
    value = claims.get(name, False)
    if type(value) is not bool:
        raise TokenError("claim_type")
    return value


def _str_list_claim(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name, ())
    if not isinstance(value, list | tuple) or not all(type(v) is str for v in value):
        raise TokenError("claim_type")
    return list(value)


class JWTVerifier:
    """Verifies Authgear JWT access tokens and turns them into :class:`AuthgearUser` objects.

    A token verified once is remembered by its exact text (LRU, ``token_cache_size`` entries) until its
    ``exp``, and only while the key that signed it is still in the JWKS: a repeated token then costs a
    dictionary lookup instead of a signature check. Failures are never remembered.
    """

    def __init__(self, settings: Settings, jwks: JWKSCache, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.jwks = jwks
        self._clock = clock
        self._algorithms = {name: JWSRegistry.algorithms[name] for name in settings.algorithms}
        self._audience = frozenset(settings.audience)
        self._issuer = settings.issuer
        self._leeway = settings.leeway
        self._require_typ = settings.require_typ
        self._cache_size = settings.token_cache_size
        self._cache: OrderedDict[str, tuple[AuthgearUser, float, PublicKey]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    def verify(self, token: str) -> AuthgearUser:
        """Return the token's user or raise :class:`InvalidTokenError` (or 503 when no keys can be had)."""
        if self._cache_size:
            entry = self._cache.get(token)
            if entry is not None:
                user, expires, key = entry
                if self._clock() < expires and self.jwks.current(key.kid) is key:
                    self.cache_hits += 1
                    return user
                with self._cache_lock:
                    self._cache.pop(token, None)
            self.cache_misses += 1
        user, expires, key = self._verify(token)
        if self._cache_size:
            with self._cache_lock:
                self._cache[token] = (user, expires, key)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return user

    def _verify(self, token: str) -> tuple[AuthgearUser, float, PublicKey]:
        if len(token) > self.settings.max_header_bytes:
            raise TokenError("oversized")
        header, claims, signing_input, signature = split_token(token)
        key = self.check_header(header)
        try:
            valid = self._algorithms[header["alg"]].verify(signing_input, signature, key.key)
        except (ValueError, TypeError, JoseError):  # a signature the algorithm cannot even parse
            valid = False
        if not valid:
            raise TokenError("signature")
        expires = self.check_claims(claims)
        return self.to_user(claims), expires, key

    def check_header(self, header: Mapping[str, Any]) -> PublicKey:
        """Apply the header rules and return the key to verify with."""
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algorithms:
            raise TokenError("alg")
        if not _FORBIDDEN_HEADERS.isdisjoint(header):
            raise TokenError("header")
        if self._require_typ:
            typ = header.get("typ")
            if type(typ) is not str or typ.lower() not in _ACCESS_TOKEN_TYPES:
                raise TokenError("typ")
        kid = header.get("kid")
        if type(kid) is not str or not kid or len(kid) > _MAX_KID:
            raise TokenError("kid")
        key = self.jwks.get(kid)
        if key is None:
            raise TokenError("unknown_kid")
        if alg not in key.algorithms:
            raise TokenError("alg")
        return key

    def check_claims(self, claims: Mapping[str, Any]) -> float:
        """Apply the registered-claim rules; return the time after which the token is expired."""
        now = self._clock()
        leeway = self._leeway
        exp: float = claims.get("exp")  # type: ignore[assignment]
        if not _is_number(exp):
            raise TokenError("exp")
        expires = exp + leeway
        if now >= expires:  # "on or after" exp is expired (RFC 7519 4.1.4)
            raise TokenError("expired", "The access token has expired.")
        for name in ("nbf", "iat"):
            if name in claims:
                value = claims[name]
                if not _is_number(value):
                    raise TokenError(name)
                if value > now + leeway:
                    raise TokenError(name)
        iss = claims.get("iss")
        if type(iss) is not str or iss != self._issuer:
            raise TokenError("iss")
        aud = claims.get("aud")
        if type(aud) is str:
            aud = [aud]
        if not isinstance(aud, list) or not aud or not all(type(a) is str for a in aud):
            raise TokenError("aud")
        if self._audience.isdisjoint(aud):
            raise TokenError("aud")
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            raise TokenError("sub")
        if "auth_time" in claims and not _is_number(claims["auth_time"]):
            raise TokenError("auth_time")
        return expires

    @staticmethod
    def to_user(claims: Mapping[str, Any]) -> AuthgearUser:
        auth_time = claims.get("auth_time")
        try:
            authenticated_at = datetime.fromtimestamp(auth_time, tz=timezone.utc) if auth_time is not None else None
        except (OverflowError, ValueError, OSError):
            raise TokenError("auth_time") from None
        return AuthgearUser(
            id=claims["sub"],
            is_anonymous=_bool_claim(claims, CLAIM_IS_ANONYMOUS),
            is_verified=_bool_claim(claims, CLAIM_IS_VERIFIED),
            can_reauthenticate=_bool_claim(claims, CLAIM_CAN_REAUTHENTICATE),
            roles=frozenset(_str_list_claim(claims, CLAIM_ROLES)),
            amr=tuple(_str_list_claim(claims, "amr")),
            authenticated_at=authenticated_at,
            claims=claims,  # AuthgearUser stores a read-only deep copy
            source="jwt",
        )
