"""JWT access-token verification: strict parsing, signature checks, Authgear's claim rules.

The compact form is parsed here, strictly, before any key is touched: exactly three canonical base64url
segments, UTF-8 JSON objects without duplicate keys or non-finite numbers. The signature is then checked by
joserfc's algorithm with a key from the project's JWKS (imported once per JWKS fetch), chosen by ``kid`` and
restricted to the configured algorithms. Header members that would point at other keys (``jwk``, ``jku``,
``x5u``, ``x5c``) and extensions we do not implement (``crit``, ``b64``) reject the token outright.
"""

from __future__ import annotations

import binascii
import json
import math
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
from .jwks import MAX_KEYS, JWKSCache, PublicKey

_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_MAX_KID = 256


class TokenError(InvalidTokenError):
    """An invalid token, with a short machine-readable ``reason`` for logs and the CLI (never in responses)."""

    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(description)
        self.reason = reason


# base64url to the standard alphabet in one C call. Characters of the standard alphabet that base64url does
# not use ("+", "/") and padding become "*", which strict decoding refuses like any other stray byte.
_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_+/=", b"+/***")
# Padding to restore, by length modulo 4 (a length of 1 modulo 4 is never valid base64).
_PADDING = (b"", b"", b"==", b"=")
# The last character of a canonical segment leaves its unused low bits zero (4 bits when the length is 2
# modulo 4, 2 bits when it is 3), so one value has exactly one spelling.
_CANONICAL_LAST = ("", "", "AQgw", "AEIMQUYcgkosw048")


def b64url_decode(segment: str) -> bytes:
    """Decode one canonical base64url segment (no padding, no other alphabet, no stray bits)."""
    remainder = len(segment) & 3
    if not segment or remainder == 1:
        raise TokenError("malformed")
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise TokenError("malformed")
    try:
        return binascii.a2b_base64(
            segment.encode("ascii").translate(_TO_STANDARD_ALPHABET) + _PADDING[remainder], strict_mode=True
        )
    except (binascii.Error, UnicodeEncodeError):
        raise TokenError("malformed") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    # "1e999" is valid JSON but parses to infinity: refused like the NaN and Infinity literals.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


_decoder = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_float=_finite_float
)


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JOSE JSON object strictly: UTF-8, an object, no duplicate members, finite numbers."""
    try:
        value = _decoder.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise TokenError("malformed") from None
    if type(value) is not dict:
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


_ABSENT: Any = object()


def _bool_claim(claims: Mapping[str, Any], name: str) -> bool:
    value = claims.get(name, False)
    if type(value) is not bool:
        raise TokenError("claim_type")
    return value


def _str_list_claim(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name, _ABSENT)
    if value is _ABSENT:
        return ()
    if not isinstance(value, list | tuple):
        raise TokenError("claim_type")
    for item in value:
        if type(item) is not str:
            raise TokenError("claim_type")
    return tuple(value)


def _user_from_claims(claims: Mapping[str, Any]) -> AuthgearUser:
    """Build the user from claims that passed :meth:`JWTVerifier.check_claims`."""
    auth_time = claims.get("auth_time")
    try:
        authenticated_at = datetime.fromtimestamp(auth_time, tz=timezone.utc) if auth_time is not None else None
    except (OverflowError, ValueError, OSError, TypeError):
        raise TokenError("auth_time") from None
    return AuthgearUser(
        id=claims["sub"],
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
CacheEntry = tuple[AuthgearUser, float, PublicKey]


class VerifiedTokenCache:
    """A bounded LRU of verified tokens, keyed by their exact text.

    Lookups take no lock: a dictionary read and an LRU bump are each atomic, and an entry is an immutable
    tuple, so a reader sees a whole entry or none. Inserts and evictions take the lock, so the bound holds.
    """

    __slots__ = ("_entries", "_lock", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> CacheEntry | None:
        entry = self._entries.get(token)
        if entry is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup itself
                self._entries.move_to_end(token)
            except KeyError:  # evicted by another thread since the read; the entry read is still whole
                pass
        return entry

    def put(self, token: str, entry: CacheEntry) -> None:
        entries = self._entries
        with self._lock:
            if token in entries:  # verified twice at once by two threads: keep the newest, most recent
                entries.move_to_end(token)
            entries[token] = entry
            while len(entries) > self.maxsize:
                entries.popitem(last=False)

    def discard(self, token: str, entry: CacheEntry) -> None:
        """Forget ``token`` if it still maps to ``entry`` (a newer entry put meanwhile is kept)."""
        with self._lock:
            if self._entries.get(token) is entry:
                del self._entries[token]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries


class JWTVerifier:
    """Verifies Authgear JWT access tokens and turns them into :class:`AuthgearUser` objects.

    A token verified once is remembered by its exact text (LRU, ``token_cache_size`` entries) until its
    ``exp`` (leeway included), and only while the key that signed it is still the same key in the JWKS: a
    repeated token then costs a dictionary lookup instead of a signature check. Failures are never remembered.

    The cold path does once what can be done once: allowed algorithms are looked up at start-up, and a header
    segment that passed the header rules and led to a valid signature is remembered (Authgear signs every token
    of a key with the same header), so only the payload is decoded per token.
    """

    #: Distinct verified header segments remembered: one per signing key in practice, and a JWKS holds at
    #: most ``MAX_KEYS`` keys.
    HEADER_CACHE_SIZE = 2 * MAX_KEYS

    def __init__(self, settings: Settings, jwks: JWKSCache, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.jwks = jwks
        self._clock = clock
        self._algorithms = {name: JWSRegistry.algorithms[name] for name in settings.algorithms}
        self._audience = frozenset(settings.audience)
        self._issuer = settings.issuer
        self._leeway = settings.leeway
        self._require_typ = settings.require_typ
        self._max_length = settings.max_header_bytes
        self._cache = VerifiedTokenCache(settings.token_cache_size) if settings.token_cache_size else None
        self._headers: dict[str, tuple[str, str]] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def cache(self) -> VerifiedTokenCache | None:
        """The verified-token cache, or None when ``token_cache_size`` is 0."""
        return self._cache

    def verify(self, token: str) -> AuthgearUser:
        """Return the token's user or raise :class:`InvalidTokenError` (or 503 when no keys can be had)."""
        cache = self._cache
        if cache is None:
            return self._verify(token)[0]
        user = self.cached(token)
        if user is not None:
            return user
        self.cache_misses += 1
        entry = self._verify(token)
        cache.put(token, entry)
        return entry[0]

    def cached(self, token: str) -> AuthgearUser | None:
        """The user of ``token`` if the verified-token cache holds it and it is still good (not expired, its key
        still the same key in the JWKS), else None; an entry no longer good is dropped. Never verifies anything."""
        cache = self._cache
        if cache is None:
            return None
        entry = cache.get(token)
        if entry is None:
            return None
        user, expires, key = entry
        if self._clock() < expires and self.jwks.still_current(key):
            self.cache_hits += 1
            return user
        cache.discard(token, entry)
        return None

    def _verify(self, token: str) -> CacheEntry:
        if len(token) > self._max_length:
            raise TokenError("oversized")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed")
        header_seg, payload_seg, signature_seg = parts
        checked = self._headers.get(header_seg)
        header = None if checked is not None else json_object(b64url_decode(header_seg))
        claims = json_object(b64url_decode(payload_seg))
        signature = b64url_decode(signature_seg)
        if checked is None:
            checked = self._check_header_fields(header)  # type: ignore[arg-type]
        alg, kid = checked
        key = self._key(alg, kid)
        signing_input = token[: len(header_seg) + len(payload_seg) + 1].encode("ascii")
        try:
            valid = self._check_signature(alg, signing_input, signature, key)
        except (ValueError, TypeError, JoseError):  # a signature the algorithm cannot even parse
            valid = False
        if not valid:
            raise TokenError("signature")
        if header is not None:
            # Only headers that led to a valid signature are remembered, so nobody can fill this with junk.
            headers = self._headers
            if len(headers) >= self.HEADER_CACHE_SIZE:
                headers.clear()
            headers[header_seg] = checked
        expires = self.check_claims(claims)
        return _user_from_claims(claims), expires, key

    def _check_signature(self, alg: str, signing_input: bytes, signature: bytes, key: PublicKey) -> bool:
        """joserfc's algorithm, with the key imported once from the JWKS."""
        return bool(self._algorithms[alg].verify(signing_input, signature, key.key))

    def _check_header_fields(self, header: Mapping[str, Any]) -> tuple[str, str]:
        """The header rules that need no key; returns (alg, kid)."""
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
        return alg, kid

    def _key(self, alg: str, kid: str) -> PublicKey:
        key = self.jwks.get(kid)
        if key is None:
            raise TokenError("unknown_kid")
        if alg not in key.algorithms:
            raise TokenError("alg")
        return key

    def check_header(self, header: Mapping[str, Any]) -> PublicKey:
        """Apply the header rules and return the key to verify with."""
        return self._key(*self._check_header_fields(header))

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
        if not isinstance(aud, list) or not aud:
            raise TokenError("aud")
        for audience in aud:
            if type(audience) is not str:
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
        """The user of claims that passed :meth:`check_claims` (raises :class:`TokenError` for mistyped ones)."""
        return _user_from_claims(claims)
