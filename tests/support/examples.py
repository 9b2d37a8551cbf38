"""Where the project's files are, and the examples loaded the way the README tells users to run them."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest
import requests

from .net import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: The examples that run as scripts, each with a path it protects, for ``pytest.mark.parametrize``.
SCRIPTS = [
    pytest.param("flask_api.py", "/me", id="flask_api"),
    pytest.param("wsgi_app.py", "/api/me", id="wsgi_app"),
]


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a fresh module named ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def run_example(script: str, path: str, env: Mapping[str, str], deadline: float = 20.0) -> Iterator[str]:
    """Run ``examples/<script>`` as the README does, with ``env`` added to this environment, on a free port.

    Yields the origin it answers at once ``path`` answers; fails if it exits or never answers. Ends it afterwards.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--port", str(port)],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + path, process, deadline)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_for(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll ``url`` until the example started as ``process`` answers; fail if it exits or never answers."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"the example exited early: {process.stdout.read() if process.stdout else b''!r}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:  # not listening yet, or too busy to answer in time
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")
