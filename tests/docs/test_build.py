"""The documentation builds as ``make docs`` builds it: every warning is an error, nothing is fetched."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .snippets import DOCS, README


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert (tmp_path / "index.html").is_file()
    assert "intersphinx" not in (DOCS / "conf.py").read_text(encoding="utf-8")  # offline: no inventory fetched


def test_the_pages_the_readme_names_exist() -> None:
    named = set(re.findall(r"`(docs/[\w/]+\.rst)`", README.read_text(encoding="utf-8")))
    assert len(named) >= 8
    missing = sorted(name for name in named if not (DOCS.parent / name).is_file())
    assert missing == []
