"""``http_timeout`` bounds each whole call to Authgear, against a real server on 127.0.0.1 that drips its answer.

requests' own timeout bounds each socket read, so a server sending one header line (or one body byte) every
0.2 s would hold a call for as long as it drips. The dripping server below goes on for 30 s at most; every
call here, with ``http_timeout=1``, must give up long before that.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from flask_authgear import ProviderUnavailableError, Settings, Verifier
from flask_authgear.core.http import FetchError, fetch_json, new_session
from flask_authgear.core.jwks import JWKSCache
from tests.support.auth import bearer_request
from tests.support.threads import together

DRIP_INTERVAL = 0.2
DRIP_FOR = 30.0
TIMEOUT = 1.0
#: Far below the 30 s drip (and the 20 s after which http.client gives up on 100 header lines), far above 1 s.
GAVE_UP_WITHIN = 8.0


class DripServer:
    """A socket server that answers every request slowly: a status line, then forever one header line
    (``mode="headers"``) or one body byte (``mode="body"``) per interval, until the client leaves."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> DripServer:
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._start(self._drip, conn)

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                if self.mode == "headers":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                    )
                end = time.monotonic() + DRIP_FOR
                line = 0
                while time.monotonic() < end and not self._stop.wait(DRIP_INTERVAL):
                    line += 1
                    conn.sendall(f"X-Drip-{line}: x\r\n".encode() if self.mode == "headers" else b" ")
            except OSError:  # the client gave up and closed: what the tests want
                return


@pytest.fixture(params=["headers", "body"])
def drip(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    with DripServer(request.param) as server:
        yield server


def _timed(call: object) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:  # returned and asserted by the caller
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def test_fetch_gives_up_at_the_deadline(drip: DripServer) -> None:
    error, elapsed = _timed(lambda: fetch_json(new_session(TIMEOUT), f"{drip.origin}/oauth2/jwks"))
    assert isinstance(error, FetchError)
    assert str(error).endswith(" failed: timed out")
    assert elapsed < GAVE_UP_WITHIN


def test_discovery_gives_up_at_the_deadline(drip: DripServer) -> None:
    cache = JWKSCache(Settings(endpoint=drip.origin, http_timeout=TIMEOUT))
    error, elapsed = _timed(lambda: cache.get("kid"))
    assert isinstance(error, ProviderUnavailableError)
    assert elapsed < GAVE_UP_WITHIN
    assert "openid-configuration" in (cache.stats.last_error or "")


def test_jwks_gives_up_at_the_deadline(drip: DripServer) -> None:
    settings = Settings(endpoint=drip.origin, jwks_uri=f"{drip.origin}/oauth2/jwks", http_timeout=TIMEOUT)
    cache = JWKSCache(settings)
    error, elapsed = _timed(lambda: cache.get("kid"))
    assert isinstance(error, ProviderUnavailableError)
    assert elapsed < GAVE_UP_WITHIN
    assert "oauth2/jwks" in (cache.stats.last_error or "")


def test_resolver_gives_up_at_the_deadline(drip: DripServer) -> None:
    verifier = Verifier(Settings(endpoint=drip.origin, mode="resolver", http_timeout=TIMEOUT))
    error, elapsed = _timed(lambda: verifier.authenticate(bearer_request("opaque-token")))
    assert isinstance(error, ProviderUnavailableError)
    assert elapsed < GAVE_UP_WITHIN


def test_concurrent_cold_requests_are_not_serialised_past_the_deadline(drip: DripServer) -> None:
    # The first request fetches the JWKS under the lock; the others wait for it. None may wait more than
    # about one deadline: the fetch ends at the deadline and the failure answers every waiter at once.
    settings = Settings(endpoint=drip.origin, jwks_uri=f"{drip.origin}/oauth2/jwks", http_timeout=TIMEOUT)
    cache = JWKSCache(settings)
    threads_count = 8
    outcomes = together(threads_count, lambda _: _timed(lambda: cache.get("kid")))
    assert len(outcomes) == threads_count
    assert all(isinstance(error, ProviderUnavailableError) for error, _ in outcomes)
    assert max(elapsed for _, elapsed in outcomes) < GAVE_UP_WITHIN
    assert drip.connections == 1  # one fetch for all of them
