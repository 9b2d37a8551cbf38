"""Minting Authgear-shaped access tokens in bulk, straight with ``cryptography`` (the same bytes joserfc makes)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import RSAKey

from flask_authgear.testing import AuthgearTestServer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def mint(server: AuthgearTestServer, sub: str, key: RSAKey | None = None, **claims: Any) -> str:
    """One RS256 ``at+jwt`` token with the claims Authgear puts in an access token."""
    signing = key or server.signing_key
    header = _b64(_json({"alg": "RS256", "typ": "at+jwt", "kid": signing.kid}))
    payload = _b64(_json(server.claims_for(sub, **claims)))
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = signing.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def mint_pool(
    server: AuthgearTestServer, count: int, *, users: int | None = None, keys: Sequence[RSAKey] | None = None
) -> list[str]:
    """``count`` distinct tokens (distinct ``jti``), for ``users`` distinct subjects, signed round-robin by ``keys``."""
    users = users or count
    return [
        mint(server, f"user-{i % users}", keys[i % len(keys)] if keys else None, roles=["reader"]) for i in range(count)
    ]


def signature_parts(token: str) -> tuple[bytes, bytes]:
    """(signing input, raw signature) of a compact JWS, for the raw-verify baseline."""
    head, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return f"{head}.{payload}".encode("ascii"), raw
