"""Every ```python block of the README runs as written, against the local Authgear-compatible server.

The placeholder endpoints (``https://<project>.authgear.cloud``) become the local server's, and
``AUTHGEAR_ENDPOINT`` points at it too. An HTML comment on the line right before a block changes how it runs:

* ``<!-- snippet: continues the Flask section -->``: the block runs after the first block under ``## Flask``,
  in the same namespace;
* ``<!-- snippet: not-runnable, because ... -->``: the block is only compiled (say why; use it sparingly).

New blocks are picked up on their own: each is a test of its own, named by its line in the README.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from flask_authgear.testing import AuthgearTestServer
from tests.support.examples import README

PLACEHOLDER = re.compile(r"https://[a-z0-9-]+\.authgear\.cloud")
MARKER = re.compile(r"<!--\s*snippet:\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Snippet:
    line: int
    code: str
    #: The ``## `` heading the block is under.
    section: str
    #: The text of the ``<!-- snippet: ... -->`` comment right before the block, if any.
    marker: str | None

    @property
    def runnable(self) -> bool:
        return not (self.marker or "").startswith("not-runnable")

    @property
    def continued_section(self) -> str | None:
        """The section whose first snippet this one continues, if it says so."""
        found = re.fullmatch(r"continues the (.+) section", self.marker or "")
        return found and found.group(1)


def read_snippets() -> list[Snippet]:
    found: list[Snippet] = []
    section = ""
    fence: str | None = None  # the language of the open fence
    start = 0
    before = ""
    for number, text in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = text.strip()
        if fence is None and stripped.startswith("```"):
            fence, start = stripped[3:], number
            marker = MARKER.fullmatch(before)
            code: list[str] = []
        elif fence is not None and stripped == "```":
            if fence == "python":
                found.append(Snippet(start + 1, "\n".join(code) + "\n", section, marker and marker.group(1)))
            fence = None
        elif fence is not None:
            code.append(text)
        elif text.startswith("## "):
            section = text[3:].strip()
        if fence is None and stripped and not stripped.startswith("```"):
            before = stripped
    return found


SNIPPETS = read_snippets()


def chain(snippet: Snippet) -> list[Snippet]:
    """The snippet, after the first snippet of the section it continues."""
    name = snippet.continued_section
    if name is None:
        return [snippet]
    base = next((s for s in SNIPPETS if s.section == name), None)
    assert base is not None, f"README.md line {snippet.line}: no snippet in a section named {name!r}"
    return [base, snippet]


def test_the_readme_has_python_snippets_and_every_marker_is_known():
    assert len(SNIPPETS) >= 3
    for snippet in SNIPPETS:
        marker = snippet.marker
        known = marker is None or snippet.continued_section or re.fullmatch(r"not-runnable, because .{10,}", marker)
        assert known, f"README.md line {snippet.line}: unknown snippet marker {marker!r}"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"line-{s.line}" for s in SNIPPETS])
def test_snippet_compiles(snippet: Snippet):
    compile(snippet.code, f"README.md:{snippet.line}", "exec")


RUNNABLE = [s for s in SNIPPETS if s.runnable]


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[f"line-{s.line}" for s in RUNNABLE])
def test_snippet_runs(snippet: Snippet, server: AuthgearTestServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", server.endpoint)
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    for part in chain(snippet):
        code = PLACEHOLDER.sub(server.endpoint, part.code)
        exec(compile(code, f"README.md:{part.line}", "exec"), namespace)
