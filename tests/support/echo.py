"""A WSGI app that answers with the X-Authgear-* request headers it received: what a proxy really forwards."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def echo_authgear_headers(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """``{"x-authgear-user-id": "...", ...}`` for every ``X-Authgear-*`` header of the request."""
    seen = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_X_AUTHGEAR_")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]
