"""Authgear's webhook signature, computed independently of the library, to sign the bodies the tests deliver."""

from __future__ import annotations

import hashlib
import hmac


def body_signature(body: bytes, secret: str) -> str:
    """``x-authgear-body-signature``: the lowercase hex HMAC-SHA256 of the exact body under the endpoint's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
