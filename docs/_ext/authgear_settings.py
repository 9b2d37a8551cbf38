"""``.. authgear-settings::``: the table of settings, rendered from the fields of ``Settings`` at build time.

The table is never written by hand, so it cannot drift from what the library validates.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from flask_authgear.config import settings_rows

HEADER = ("setting (``AUTHGEAR_*`` in ``app.config``, lowercase keyword elsewhere)", "default", "meaning")


def _rst(markdown: str) -> str:
    """A cell as the settings table writes it (`code` and **bold**) in reStructuredText.

    A literal followed by a letter (the `kid`s of a row) needs an escaped space to end where it should.
    """
    return re.sub(r"`([^`]+)`(\w?)", lambda m: f"``{m[1]}``" + (f"\\ {m[2]}" if m[2] else ""), markdown)


def settings_rst() -> list[str]:
    """The settings table as a reStructuredText ``list-table``, one row per setting."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 18 60", ""]
    for row in (HEADER, *((_rst(cell) for cell in row) for row in settings_rows())):
        first, *rest = row
        lines.append(f"   * - {first}")
        lines.extend(f"     - {cell}" for cell in rest)
    return lines


class SettingsTable(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(settings_rst(), source="flask_authgear/config.py"), 0, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("authgear-settings", SettingsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
