"""Strict JOSE for access tokens: the compact serialisation, the header rules and the signature; no claims.

The compact form is parsed strictly, before any key is touched: exactly three canonical base64url segments,
each a JSON object by the rules of :mod:`flask_authgear.core.json` (UTF-8, no duplicate keys, finite numbers,
bounded nesting). The signature is then checked by joserfc's algorithm with a key from the project's JWKS
(imported once per JWKS fetch), chosen by ``kid`` and restricted to the configured algorithms. Header members
that would point at other keys (``jwk``, ``jku``, ``x5u``, ``x5c``) and extensions we do not implement
(``crit``, ``b64``) reject the token outright.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from joserfc.errors import JoseError

from . import json
from .refusals import Reason, TokenError, first_refusal

if TYPE_CHECKING:
    from ..config import Settings
    from .jwks import JWKSCache, PublicKey

__all__ = ["FORBIDDEN_HEADERS", "JWSVerifier", "b64url_decode", "is_kid", "looks_like_jwt"]

_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Header members that refuse a token: keys or key locations of its own choosing, and extensions we do not
#: implement.
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_MAX_KID = 256


# base64url to the standard alphabet in one C call. Characters of the standard alphabet that base64url does
# not use ("+", "/") and padding become "*", which strict decoding refuses like any other stray byte.
_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_+/=", b"+/***")
# Padding to restore, by length modulo 4 (a length of 1 modulo 4 is never valid base64).
_PADDING = (b"", b"", b"==", b"=")
# The last character of a canonical segment leaves its unused low bits zero (4 bits when the length is 2
# modulo 4, 2 bits when it is 3), so one value has exactly one spelling.
_CANONICAL_LAST = ("", "", "AQgw", "AEIMQUYcgkosw048")


def b64url_decode(segment: str) -> bytes:
    """Decode one canonical base64url segment (no padding, no other alphabet, no stray bits), or raise
    :class:`ValueError`, as the strict JSON reader does."""
    remainder = len(segment) & 3
    if not segment or remainder == 1:
        raise ValueError("not a base64url segment")
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise ValueError("stray bits in the last character")
    # binascii.Error and UnicodeEncodeError are ValueErrors.
    return binascii.a2b_base64(
        segment.encode("ascii").translate(_TO_STANDARD_ALPHABET) + _PADDING[remainder], strict_mode=True
    )


def is_kid(value: Any) -> TypeGuard[str]:
    """A usable key ID, in a token's header as in the JWKS: a non-empty string of at most 256 characters."""
    return type(value) is str and 0 < len(value) <= _MAX_KID


def looks_like_jwt(token: str) -> bool:
    """A cheap shape test used by auto mode to pick local verification over the resolver."""
    return token.count(".") == 2 and token.startswith("eyJ")


class JWSVerifier:
    """Checks a compact JWS up to and including its signature, and returns its payload and key.

    A header segment that passed the header rules and led to a valid signature is remembered (Authgear signs
    every token of a key with the same header), so only the payload is decoded per token.
    """

    def __init__(self, settings: Settings, jwks: JWKSCache) -> None:
        # joserfc's algorithms load the cryptography backends: imported by the modes that verify JWTs, when
        # their verifier is built, not by ``import flask_authgear``.
        from joserfc.jws import JWSRegistry

        from .jwks import MAX_KEYS

        self.jwks = jwks
        #: Distinct verified header segments remembered: one per signing key in practice, and a JWKS holds at
        #: most ``MAX_KEYS`` keys.
        self.header_cache_size = 2 * MAX_KEYS
        self._algorithms = {name: JWSRegistry.algorithms[name] for name in settings.algorithms}
        self._require_typ = settings.require_typ
        self._max_length = settings.max_header_bytes
        self._headers: dict[str, tuple[str, str]] = {}

    def verify(self, token: str) -> tuple[dict[str, Any], PublicKey]:
        """The payload as a JSON object and the key that signed it, or raise :class:`TokenError`."""
        if len(token) > self._max_length:
            raise TokenError(Reason.OVERSIZED)
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError(Reason.MALFORMED)
        header_seg, payload_seg, signature_seg = parts
        checked = self._headers.get(header_seg)
        try:
            header = None if checked is not None else json.loads_object(b64url_decode(header_seg))
            payload = json.loads_object(b64url_decode(payload_seg))
            signature = b64url_decode(signature_seg)
        except ValueError:
            raise TokenError(Reason.MALFORMED) from None
        if header is None:
            alg, kid = checked  # type: ignore[misc]
            key = self.key_for(alg, kid)
        else:
            key = self.check_header(header)
            alg, kid = header["alg"], header["kid"]
        signing_input = token[: len(header_seg) + len(payload_seg) + 1].encode("ascii")
        if not self.check_signature(alg, signing_input, signature, key):
            raise TokenError(Reason.SIGNATURE)
        if header is not None:
            # Only headers that led to a valid signature are remembered, so nobody can fill this with junk.
            if len(self._headers) >= self.header_cache_size:
                self._headers.clear()
            self._headers[header_seg] = (alg, kid)
        return payload, key

    def check_signature(self, alg: str, signing_input: bytes, signature: bytes, key: PublicKey) -> bool:
        """joserfc's algorithm, with the key imported once from the JWKS; a signature the algorithm cannot
        even parse is invalid."""
        try:
            return bool(self._algorithms[alg].verify(signing_input, signature, key.key))
        except (ValueError, TypeError, JoseError):
            return False

    def check_header(self, header: Mapping[str, Any]) -> PublicKey:
        """Apply the header rules and return the key to verify with."""
        refused = self.header_refusals(header)
        if refused:
            raise first_refusal(refused)
        return self.key_for(header["alg"], header["kid"])

    def header_refusals(self, header: Mapping[str, Any]) -> dict[str, Reason]:
        """Every header rule that needs no key and that ``header`` breaks, by name, in the order they apply (the
        first is the token's refusal); empty when it keeps them all. All are listed so that a tool can report
        each one, not only the first."""
        refused = {}
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algorithms:
            refused["alg"] = Reason.ALG
        if not FORBIDDEN_HEADERS.isdisjoint(header):
            refused["header"] = Reason.HEADER
        typ = header.get("typ")
        if self._require_typ and (type(typ) is not str or typ.lower() not in _ACCESS_TOKEN_TYPES):
            refused["typ"] = Reason.TYP
        if not is_kid(header.get("kid")):
            refused["kid"] = Reason.KID
        return refused

    def key_for(self, alg: str, kid: str) -> PublicKey:
        """The project's key for ``kid`` (refetching the JWKS for an unknown one), if it may verify ``alg``."""
        key = self.jwks.get(kid)
        if key is None:
            raise TokenError(Reason.UNKNOWN_KID)
        if alg not in key.algorithms:
            raise TokenError(Reason.ALG)
        return key
