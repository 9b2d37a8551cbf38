"""Where the project's files are, and the examples loaded the way the README tells users to run them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import requests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a fresh module named ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def wait_for(url: str, process: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
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
