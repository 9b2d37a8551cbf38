"""Serve a WSGI app on 127.0.0.1 in a background thread, for tests that need real sockets.

Every test that talks HTTP to an app of its own goes through :class:`AppServer`: Werkzeug's threaded server by
default, HTTP/1.1 keep-alive when a test reuses connections, or the standard library's ``wsgiref`` server when
a test needs PEP 3333's handling of raw request bytes. None of them log requests.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import wsgiref.simple_server
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from socketserver import BaseServer

    from _typeshed.wsgi import WSGIApplication

#: How often the serving thread checks for shutdown: teardown waits at most this long.
_POLL_INTERVAL = 0.05


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _KeepAliveHandler(_QuietHandler):
    """HTTP/1.1 with keep-alive: a client thread reuses one connection, as a real client would."""

    protocol_version = "HTTP/1.1"


class _QuietStdlibHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class AppServer:
    """``with AppServer(app) as server:``; the app answers at ``server.url`` (``server.port``) until the block ends.

    Args:
        app: the WSGI application to serve.
        keep_alive: answer in HTTP/1.1 and keep connections open (Werkzeug's server only).
        stdlib: serve with the standard library's single-threaded ``wsgiref`` server, which hands the raw
            request line over as PEP 3333 says (Latin-1 text), where Werkzeug's server decodes it once more.
    """

    def __init__(self, app: WSGIApplication, *, keep_alive: bool = False, stdlib: bool = False) -> None:
        if keep_alive and stdlib:
            raise ValueError("keep_alive needs Werkzeug's server")
        self.app = app
        self.keep_alive = keep_alive
        self.stdlib = stdlib
        self._server: BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def __enter__(self) -> AppServer:
        if self.stdlib:
            stdlib_server = wsgiref.simple_server.make_server(
                "127.0.0.1", 0, self.app, handler_class=_QuietStdlibHandler
            )
            self._server, self._port = stdlib_server, stdlib_server.server_port
        else:
            handler = _KeepAliveHandler if self.keep_alive else _QuietHandler
            werkzeug_server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=handler)
            werkzeug_server.daemon_threads = True  # type: ignore[attr-defined]
            self._server, self._port = werkzeug_server, werkzeug_server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return self._port

    @property
    def url(self) -> str:
        """The origin the app answers at, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"


def get(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    source: str = "127.0.0.1",
    method: str = "GET",
) -> tuple[int, dict[str, str], Any]:
    """One request from the given loopback source address; returns status, headers and the JSON body (or text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return response.status, answer_headers, body


def send_raw(port: int, data: bytes) -> bytes:
    """Send bytes as they are (an HTTP client would refuse or re-encode them) and return the whole answer.

    ``data`` must ask for ``Connection: close``: the answer is read until the server closes the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer
