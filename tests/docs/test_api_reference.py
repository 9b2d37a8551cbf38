"""The API reference lists every public name, so a name added to ``__all__`` cannot go undocumented."""

from __future__ import annotations

import re

import pytest

import flask_authgear
import flask_authgear.testing

from .snippets import DOCS

DOCUMENTED = set(
    re.findall(r"^\.\. (?:auto\w+|py:\w+):: ([\w.]+)", (DOCS / "api.rst").read_text(encoding="utf-8"), re.M)
)


@pytest.mark.parametrize("module", [flask_authgear, flask_authgear.testing], ids=lambda m: m.__name__)
def test_every_public_name_is_in_the_reference(module: object) -> None:
    names = [name for name in module.__all__ if not name.startswith("_")]  # type: ignore[attr-defined]
    missing = [name for name in names if f"{module.__name__}.{name}" not in DOCUMENTED]  # type: ignore[attr-defined]
    assert missing == [], f"add them to docs/api.rst: {missing}"
