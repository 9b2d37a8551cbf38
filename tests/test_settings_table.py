"""The README's settings table is rendered from the settings themselves, so the two cannot drift apart."""

from __future__ import annotations

import dataclasses

from flask_authgear import Settings
from flask_authgear.config import SETTING_NAMES, settings_markdown
from tests.support.examples import README


def readme_settings_table() -> str:
    """The table that opens the README's "Settings" section."""
    section = README.read_text(encoding="utf-8").split("\n## Settings\n", 1)[1]
    lines = section.strip("\n").splitlines()
    table = [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    return "\n".join(table) + "\n"


def test_readme_table_is_the_rendered_one() -> None:
    assert readme_settings_table() == settings_markdown()


def test_the_table_lists_every_setting_once() -> None:
    names = [line.split(" | ")[0] for line in settings_markdown().splitlines()[2:]]
    assert sorted(names) == sorted(f"| `{name.upper()}`" for name in SETTING_NAMES)
    assert {f.name for f in dataclasses.fields(Settings)} == SETTING_NAMES


def test_rows_show_defaults_and_bounds() -> None:
    rows = {line.split(" | ")[0].strip("| `"): line for line in settings_markdown().splitlines()[2:]}
    assert rows["ENDPOINT"].startswith("| `ENDPOINT` | required |")
    assert rows["LEEWAY"] == "| `LEEWAY` | `60` | clock skew allowed for `exp`, `nbf`, `iat`, in seconds; 0 to 600 |"
    assert '| `["RS256"]` |' in rows["ALGORITHMS"]
    assert "| `True` |" in rows["REQUIRE_TYP"]
    assert "| none |" in rows["WEBHOOK_SECRET"]
