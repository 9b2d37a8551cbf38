"""A scripted resolver: a real HTTP server on 127.0.0.1 that records what it receives and answers as told.

The local Authgear-compatible server answers like Authgear; this one answers anything a test scripts
(odd header spellings, delays, answers chosen by cookie), and shows exactly which headers the library sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .app_server import AppServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, Mapping[str, str], bytes]
Script = Callable[[Received], Answer]


def valid(user_id: str, **extra: str) -> Answer:
    """A resolver answer for a valid session of ``user_id``; ``extra`` adds or replaces headers."""
    headers = {
        "X-Authgear-Session-Valid": "true",
        "X-Authgear-User-Id": user_id,
        "X-Authgear-User-Anonymous": "false",
        "X-Authgear-User-Verified": "true",
        "X-Authgear-User-Can-Reauthenticate": "true",
        "X-Authgear-Session-Amr": "pwd",
    }
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return 200, headers, b""


@dataclass
class ScriptedResolver:
    """Use as a context manager; ``script`` decides each answer, ``received`` lists every request."""

    script: Script = lambda request: (200, {}, b"")
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._serving = AppServer(self._app)

    def __enter__(self) -> ScriptedResolver:
        self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(*exc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._serving.port}/_resolver/resolve"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.received)

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        received = Received(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(),
        )
        with self._lock:
            self.received.append(received)
        if self.delay:
            time.sleep(self.delay)
        status, headers, body = self.script(received)
        response = Response(body, status=status)
        for name, value in headers.items():
            response.headers[name] = value
        result: Any = response(environ, start_response)
        return result
