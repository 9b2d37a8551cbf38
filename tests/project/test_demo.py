"""``make demo`` (examples/demo.py): shows each answer, fails when one differs, leaves nothing running."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask

from tests.support.examples import EXAMPLES, ROOT, load_example

DEMO = EXAMPLES / "demo.py"


def test_demo_runs_and_stops_everything() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "1. A public route, no token" in out
    assert '< 401 UNAUTHORIZED\n   < WWW-Authenticate: Bearer realm="authgear"\n' in out
    assert '"id":"alice"' in out
    assert 'error="invalid_token"' in out
    assert '< 403 FORBIDDEN\n   < WWW-Authenticate: Bearer realm="authgear", error="insufficient_scope"' in out
    assert "UNEXPECTED" not in out
    assert "OK: all 6 answers as expected." in out
    # Both servers were on loopback ports that are closed now.
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", out)]
    assert len(ports) == 2
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_demo_fails_when_an_answer_differs() -> None:
    """An app that lets everyone in must make the demo fail, with each wrong answer named."""

    def open_app(config: Mapping[str, Any]) -> Flask:
        app = Flask(__name__)

        @app.get("/<path:anything>")
        def anything(anything: str) -> dict[str, Any]:
            return {"message": "open"}

        return app

    demo = load_example("demo")
    out = io.StringIO()
    assert demo.run_demo(open_app, out=out) == 5
    text = out.getvalue()
    assert text.count("UNEXPECTED: expected status 401, got 200") == 2
    assert "UNEXPECTED: expected status 403, got 200" in text
    assert "FAILED: 5 of 6 answers differ" in text
    assert "OK:" not in text
