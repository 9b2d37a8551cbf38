"""Run a real ``nginx`` with the configuration shipped in ``examples/nginx``, its ports and hosts filled in.

Tests skip with a clear message when nginx is absent on a developer machine; ``.ci/run`` installs it, so in CI
they always run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .examples import EXAMPLES
from .net import free_port
from .redis_server import ServerProcess

EXAMPLE = EXAMPLES / "nginx" / "nginx.conf"


def nginx_binary() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def render(template: str, *, listen_port: int, app_port: int, authgear_host: str, authgear_origin: str) -> str:
    """The example configuration with this test's addresses; every placeholder must be there exactly."""
    replacements = [
        ("https://myapp.authgear.cloud/_resolver/resolve", f"{authgear_origin}/_resolver/resolve", 1),
        ("proxy_set_header Host myapp.authgear.cloud;", f"proxy_set_header Host {authgear_host};", 1),
        ("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};", 1),
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen_port};", 1),
    ]
    for old, new, count in replacements:
        found = template.count(old)
        if found != count:
            raise AssertionError(f"examples/nginx/nginx.conf: expected {count} x {old!r}, found {found}")
        template = template.replace(old, new)
    return template


class NginxServer(ServerProcess):
    """One nginx master in the foreground, with its own prefix directory."""

    def __init__(self, binary: str, config: str, port: int) -> None:
        super().__init__("flask-authgear-nginx-")
        self.binary = binary
        self.port = port
        self.prefix = Path(self._dir.name)
        os.chmod(self.prefix, 0o755)  # workers may run as another user when the master is root
        for sub in ("logs", "temp"):
            (self.prefix / sub).mkdir()
        self.config_path = self.prefix / "nginx.conf"
        self.config_path.write_text(config)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxServer:
        command = [self.binary, "-p", str(self.prefix), "-c", str(self.config_path), "-e", "logs/error.log"]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected the example configuration:\n{check.stderr}")
        self._process = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited at start-up:\n{self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_nginx(*, app_port: int, authgear_host: str, authgear_origin: str) -> NginxServer:
    """nginx running the example configuration (skips the test when nginx is not installed)."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed here (.ci/run installs it; apt-get install nginx-light)")
    last: Exception | None = None
    for _ in range(5):  # a port taken between free_port() and nginx's bind: try another
        port = free_port()
        config = render(
            EXAMPLE.read_text(),
            listen_port=port,
            app_port=app_port,
            authgear_host=authgear_host,
            authgear_origin=authgear_origin,
        )
        server = NginxServer(binary, config, port)
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
            server.close()
    raise RuntimeError(f"nginx did not start: {last}")
