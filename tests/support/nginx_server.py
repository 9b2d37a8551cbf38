"""Run a real ``nginx`` with the configuration shipped in ``examples/nginx``, its ports and hosts filled in.

Tests skip with a clear message when nginx is absent on a developer machine; ``.ci/run`` installs it, so in CI
they always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .examples import EXAMPLES
from .proxy_server import ProxyServer


def nginx_binary() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class NginxServer(ProxyServer):
    """One nginx master in the foreground; its home is the ``-p`` prefix that the example's paths are under."""

    name = "nginx"
    example = EXAMPLES / "nginx" / "nginx.conf"

    def __init__(self, binary: str, *, app_port: int, authgear_host: str, authgear_origin: str) -> None:
        super().__init__(binary, app_port=app_port, authgear_host=authgear_host, authgear_origin=authgear_origin)
        os.chmod(self.home, 0o755)  # workers may run as another user when the master is root
        for sub in ("logs", "temp"):
            (self.home / sub).mkdir()
        self.log_path = self.home / "logs" / "error.log"  # the example's error_log

    def replacements(
        self, *, listen_port: int, app_port: int, authgear_host: str, authgear_origin: str
    ) -> list[tuple[str, str]]:
        return [
            ("https://myapp.authgear.cloud/_resolver/resolve", f"{authgear_origin}/_resolver/resolve"),
            ("proxy_set_header Host myapp.authgear.cloud;", f"proxy_set_header Host {authgear_host};"),
            ("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};"),
            ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen_port};"),
        ]

    def command(self) -> list[str]:
        return [
            self.binary,
            "-p",
            str(self.home),
            "-c",
            str(self.config_path),
            "-e",
            "logs/error.log",
            "-g",
            "daemon off;",
        ]

    def start(self) -> NginxServer:
        check = subprocess.run([*self.command(), "-t"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected the example configuration:\n{check.stderr}")
        return super().start()


def start_nginx(*, app_port: int, authgear_host: str, authgear_origin: str) -> NginxServer:
    """nginx running the example configuration (skips the test when nginx is not installed)."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed here (.ci/run installs it; apt-get install nginx-light)")
    return NginxServer.launch(binary, app_port=app_port, authgear_host=authgear_host, authgear_origin=authgear_origin)
