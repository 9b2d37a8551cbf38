"""The documentation's table of settings is generated from the settings' definition, so the two cannot drift."""

from __future__ import annotations

import dataclasses
import importlib.util
from types import ModuleType

from docutils.core import publish_doctree

from flask_authgear import Settings
from flask_authgear.config import _SETTING_NAMES, settings_rows

from .snippets import DOCS, README


def extension() -> ModuleType:
    """``docs/_ext/authgear_settings.py``, the Sphinx extension that renders the table."""
    spec = importlib.util.spec_from_file_location("authgear_settings", DOCS / "_ext" / "authgear_settings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_page_renders_the_generated_table() -> None:
    page = (DOCS / "settings.rst").read_text(encoding="utf-8")
    assert "\n.. authgear-settings::\n" in page
    assert "``LEEWAY``" not in page.split(".. authgear-settings::")[0], "a hand-written table beside the generated one"
    assert "| `LEEWAY` |" not in README.read_text(encoding="utf-8")
    assert '"authgear_settings"' in (DOCS / "conf.py").read_text(encoding="utf-8")


def test_every_setting_has_one_row() -> None:
    names = [name for name, _, _ in settings_rows()]
    assert sorted(names) == sorted(f"`{name.upper()}`" for name in _SETTING_NAMES)
    assert {f.name for f in dataclasses.fields(Settings)} == _SETTING_NAMES


def test_rows_show_defaults_and_bounds() -> None:
    rows = {name.strip("`"): (default, meaning) for name, default, meaning in settings_rows()}
    assert rows["ENDPOINT"][0] == "required"
    assert rows["LEEWAY"] == ("`60`", "clock skew allowed for `exp`, `nbf`, `iat`, in seconds; 0 to 600")
    assert rows["ALGORITHMS"][0] == '`["RS256"]`'
    assert rows["REQUIRE_TYP"][0] == "`True`"
    assert rows["WEBHOOK_SECRET"][0] == "none"


def test_the_table_is_valid_restructuredtext_with_every_setting() -> None:
    lines = extension().settings_rst()
    tree = publish_doctree(
        "\n".join(lines), settings_overrides={"report_level": 5, "halt_level": 5, "warning_stream": False}
    )
    messages = [m.astext() for m in tree.findall(lambda node: node.tagname == "system_message")]
    assert messages == []
    text = tree.astext()
    for name in _SETTING_NAMES:
        assert name.upper() in text
    assert "unknown kids; the first after any fetch" in text  # a literal followed by a letter ends where it should
