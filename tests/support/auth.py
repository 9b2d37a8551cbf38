"""A bearer token presented the two ways the tests need, as HTTP headers and as the core's request data; and the
credentials a cache is shown, to look for afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from flask_authgear import InvalidTokenError
from flask_authgear.core import RequestData

if TYPE_CHECKING:
    from flask_authgear import Verifier
    from flask_authgear.testing import AuthgearTestServer


def bearer(token: str) -> dict[str, str]:
    """Headers presenting ``token`` in ``Authorization: Bearer``, for a test client, ``requests`` or a raw socket."""
    return {"Authorization": f"Bearer {token}"}


def bearer_request(token: str) -> RequestData:
    """The request data the core sees for a request presenting ``token`` in ``Authorization: Bearer``."""
    return RequestData(authorization=f"Bearer {token}")


def authenticate_secrets(server: AuthgearTestServer, verifier: Verifier, users: int = 3) -> list[str]:
    """Authenticate ``users`` new sessions (``user-0`` ...) with ``verifier``, each by bearer token and by cookie
    beside a private cookie of the app's, and one unknown token; returns every secret sent, which no cache may
    store as it is."""
    secrets: list[str] = []
    for i in range(users):
        session = server.create_session(f"user-{i}")
        verifier.authenticate(bearer_request(session.token))
        verifier.authenticate(RequestData(cookie=f"prefs=private-{i}; {session.cookie}"))
        secrets += [session.token, session.cookie_value, f"private-{i}"]
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request("refused-secret-token"))
    return [*secrets, "refused-secret-token"]
