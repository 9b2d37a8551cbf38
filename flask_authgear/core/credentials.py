"""Reading bearer credentials out of the ``Authorization`` header, strictly (RFC 6750 section 2.1)."""

from __future__ import annotations

from ..errors import InvalidRequestError

__all__ = ["bearer_token", "is_b64token"]

# RFC 6750 b64token is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". Deleting these bytes with
# bytes.translate (one C loop) leaves nothing exactly when a token is made of them.
_B64TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


def bearer_token(authorization: str | None, max_bytes: int) -> str | None:
    """Return the bearer token, None when no Authorization header was sent, or raise for a malformed header.

    Only ``Bearer <token>`` is accepted (scheme case-insensitive, spaces between). Other schemes, a bare
    ``Bearer`` and oversized headers are errors, never "no credentials", so a broken client is not silently
    treated as anonymous. Tokens in the query string or body are never read. The token's own characters are
    :func:`is_b64token`'s business: the verifier checks them before the token is used or forwarded.
    """
    if not authorization:
        return None
    if len(authorization) > max_bytes:
        raise InvalidRequestError("The Authorization header is too large.")
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidRequestError("Only the Bearer authorization scheme is supported.")
    return rest.strip(" ")


def is_b64token(token: str) -> bool:
    """Whether ``token`` is an RFC 6750 ``b64token``: not empty, no spaces or extra words, no other characters."""
    try:
        body = token.rstrip("=").encode("ascii")
    except UnicodeEncodeError:
        return False
    return bool(body) and not body.translate(None, _B64TOKEN_BYTES)
