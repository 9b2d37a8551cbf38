"""Start a real ``redis-server`` on a free loopback port in a temporary directory, and stop it.

Tests skip with a clear message when the binary is absent on a developer machine; ``.ci/run`` installs it,
so in CI they always run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .net import free_port

#: For tests that cache in Redis: requests-cache 1.3 calls redis-py's setex, which redis-py 8 marks deprecated;
#: it works the same.
IGNORE_SETEX_DEPRECATION = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")


def redis_binary() -> str | None:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class ServerProcess:
    """A server child process with its own temporary directory: ``stop`` ends it, ``close`` also removes the
    directory."""

    def __init__(self, prefix: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self._process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class RedisServer(ServerProcess):
    """One redis-server process: no persistence, loopback only, its own directory."""

    def __init__(self, binary: str) -> None:
        super().__init__("flask-authgear-redis-")
        self.binary = binary
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        return Path(self._dir.name)

    def start(self) -> RedisServer:
        for _ in range(5):  # a port taken between free_port() and the bind: try another
            self.port = free_port()
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self._dir.name,
                    "--daemonize", "no",
                    "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError("redis-server did not start")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()


def new_redis() -> RedisServer:
    """A started server that the caller closes (skips the test when redis-server is absent)."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed here (.ci/run installs it; apt-get install redis-server)")
    return RedisServer(binary).start()


def start_redis() -> Iterator[RedisServer]:
    """Generator body for fixtures: a running server, stopped and removed afterwards."""
    server = new_redis()
    try:
        yield server
    finally:
        server.close()
