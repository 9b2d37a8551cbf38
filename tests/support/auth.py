"""A bearer token presented the two ways the tests need: as HTTP headers, and as the core's request data."""

from __future__ import annotations

from flask_authgear.core import RequestData


def bearer(token: str) -> dict[str, str]:
    """Headers presenting ``token`` in ``Authorization: Bearer``, for a test client, ``requests`` or a raw socket."""
    return {"Authorization": f"Bearer {token}"}


def bearer_request(token: str) -> RequestData:
    """The request data the core sees for a request presenting ``token`` in ``Authorization: Bearer``."""
    return RequestData(authorization=f"Bearer {token}")
