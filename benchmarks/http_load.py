"""A real HTTP run: gunicorn workers serving the example app, a bounded load generator on loopback.

The load generator is a few threads of raw sockets (one request per connection, as gunicorn's sync workers
answer), bounded both in requests and in seconds. The routes take turns in short slices, so a change in the
machine's load falls on all of them alike. Client and server share this machine's CPUs, so the absolute
numbers are modest; the comparison between routes of one run is the point.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask_authgear.testing import AuthgearTestServer

from .tokens import mint_pool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BARE = "GET /public (no authentication)"
JWT_WARM = "GET /me, JWT warm (one token; user JSON)"
JWT_COLD = "GET /me, JWT cold (each token new; user JSON)"
ROWS = (BARE, JWT_WARM, JWT_COLD)


@dataclass(frozen=True)
class HTTPSizes:
    seconds: float  # per route, in total
    slices: int  # turns per route
    max_requests: int  # per route and turn
    clients: int
    cold_pool: int  # distinct tokens for the cold route (its request bound too)


FULL = HTTPSizes(seconds=6.0, slices=12, max_requests=20_000, clients=4, cold_pool=2_500)
QUICK = HTTPSizes(seconds=2.0, slices=4, max_requests=5_000, clients=4, cold_pool=500)
SMOKE = HTTPSizes(seconds=0.3, slices=1, max_requests=200, clients=2, cold_pool=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(port: int, path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n".encode()


def _send(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def gunicorn(server: AuthgearTestServer, workers: int) -> Iterator[int]:
    """``examples/flask_api.py`` under gunicorn with ``workers`` sync workers; yields the port."""
    port = _free_port()
    env = dict(os.environ, AUTHGEAR_ENDPOINT=server.endpoint, AUTHGEAR_HTTP_TIMEOUT="5")
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(EXAMPLES),
        "--log-level",
        "warning",
        "flask_api:create_app()",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                errors = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise RuntimeError(f"gunicorn exited: {errors}")
            try:
                if _send(port, _request(port, "/public", None)).startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 30 s")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load(port: int, requests: Sequence[bytes], clients: int, seconds: float, limit: int) -> tuple[float, int]:
    """Send ``requests`` round-robin from ``clients`` threads, at most ``limit`` of them and for at most
    ``seconds``; returns (seconds taken, answered count). Any non-200 answer is an error."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "failed": 0}
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            with lock:
                index = state["next"]
                if index >= limit:
                    return
                state["next"] = index + 1
            answer = _send(port, requests[index % len(requests)])
            with lock:
                state["done" if answer.startswith(b"HTTP/1.1 200") else "failed"] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.perf_counter() - start
    if state["failed"]:
        raise RuntimeError(f"{state['failed']} requests were not answered 200")
    return elapsed, state["done"]


def measure(server: AuthgearTestServer, sizes: HTTPSizes, workers: int) -> list[tuple[str, float, int]]:
    """Requests per second for the bare route and the authenticated one, warm and cold, in alternating slices."""
    cold_tokens = mint_pool(server, sizes.cold_pool)
    warm_token = mint_pool(server, 1)[0]
    totals = {name: [0.0, 0] for name in ROWS}
    with gunicorn(server, workers) as port:
        warm = [_request(port, "/me", warm_token)]
        for _ in range(workers * 20):  # every worker fetches its JWKS and caches the warm token first
            _send(port, warm[0])
        cold = [_request(port, "/me", token) for token in cold_tokens]
        routes = ((BARE, [_request(port, "/public", None)]), (JWT_WARM, warm))
        turn = sizes.seconds / sizes.slices
        for _ in range(sizes.slices):
            for name, requests in routes:
                elapsed, count = load(port, requests, sizes.clients, turn, sizes.max_requests)
                totals[name][0] += elapsed
                totals[name][1] += count
            sent = int(totals[JWT_COLD][1])
            if sent < len(cold):  # each cold token is sent once, so the pool bounds this route
                elapsed, count = load(port, cold[sent:], sizes.clients, turn, len(cold) - sent)
                totals[JWT_COLD][0] += elapsed
                totals[JWT_COLD][1] += count
    return [(name, count / elapsed if elapsed else 0.0, int(count)) for name, (elapsed, count) in totals.items()]
