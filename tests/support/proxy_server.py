"""Run a real reverse proxy with the configuration shipped in ``examples/``, its ports and hosts filled in.

:class:`ProxyServer` is the one way the tests start a proxy binary: it renders the example into a temporary
directory of its own, starts the binary on a free loopback port, waits until the port accepts connections and
tries another port when the one picked was taken meanwhile. ``caddy_server`` and ``nginx_server`` say only what
differs: where the binary and the example are, how the example is filled in, and the command line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from .app_server import get
from .examples import ROOT
from .net import free_port
from .recorder import Received, ScriptedResolver, valid
from .redis_server import ServerProcess

P = TypeVar("P", bound="ProxyServer")


class ProxyServer(ServerProcess):
    """One proxy process in the foreground, with its configuration, its home and its log in its own directory."""

    #: ``caddy`` or ``nginx``: names the directory and the errors.
    name: ClassVar[str]
    #: The shipped configuration that the tests run.
    example: ClassVar[Path]

    def __init__(self, binary: str, *, app_port: int, authgear_host: str, authgear_origin: str) -> None:
        super().__init__(f"flask-authgear-{self.name}-")
        self.binary = binary
        self.port = free_port()
        self.home = Path(self._dir.name)
        self.log_path = self.home / f"{self.name}.log"
        self.config_path = self.home / self.example.name
        config = self.example.read_text()
        for old, new in self.replacements(
            listen_port=self.port, app_port=app_port, authgear_host=authgear_host, authgear_origin=authgear_origin
        ):
            found = config.count(old)  # every placeholder must be there exactly once
            if found != 1:
                raise AssertionError(f"{self.example.relative_to(ROOT)}: expected 1 x {old!r}, found {found}")
            config = config.replace(old, new)
        self.config_path.write_text(config)

    def replacements(
        self, *, listen_port: int, app_port: int, authgear_host: str, authgear_origin: str
    ) -> list[tuple[str, str]]:
        """Each placeholder of the example and what replaces it: this test's addresses."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line that runs the proxy in the foreground."""
        raise NotImplementedError

    def start(self: P) -> P:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @classmethod
    def launch(cls: type[P], binary: str, *, app_port: int, authgear_host: str, authgear_origin: str) -> P:
        """A running proxy in front of the app on ``app_port``, asking the Authgear at ``authgear_origin``."""
        last: Exception | None = None
        for _ in range(5):  # a port taken between free_port() and the proxy's bind: try another
            server = cls(binary, app_port=app_port, authgear_host=authgear_host, authgear_origin=authgear_origin)
            try:
                return server.start()
            except RuntimeError as exc:
                last = exc
                server.close()
        raise RuntimeError(f"{cls.name} did not start: {last}")


#: Starts a proxy in front of an app: ``start(app_port=..., authgear_host=..., authgear_origin=...)``.
StartProxy = Callable[..., ProxyServer]


#: A client's request: credentials, and headers the resolver should not see or would misread.
CLIENT_HEADERS = {
    "Authorization": "Bearer opaque",
    "Cookie": "session=abc",
    "X-Forwarded-Host": "other-project.authgear.cloud",
    "X-Forwarded-For": "198.51.100.1",
    "Origin": "https://evil.example",
    "Content-Type": "application/json",
}


def resolver_request(start: StartProxy, app_port: int) -> tuple[int, Received]:
    """Send ``GET /me`` with :data:`CLIENT_HEADERS` through a proxy whose resolver records what it is asked.

    Returns the proxy's status and the one request the resolver received (it answers for user ``uma``); the
    resolver is asked for Host ``myapp.authgear.example``.
    """
    with ScriptedResolver(script=lambda request: valid("uma")) as resolver:
        origin = resolver.url.rsplit("/_resolver/resolve", 1)[0]
        proxy = start(app_port=app_port, authgear_host="myapp.authgear.example", authgear_origin=origin)
        try:
            status = get(proxy.port, "/me", CLIENT_HEADERS)[0]
        finally:
            proxy.close()
        (received,) = resolver.received
    return status, received
