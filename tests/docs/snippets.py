"""The Python examples of the README and of ``docs/``, read the way a reader finds them.

Every ``python`` block is preceded by a marker naming it, an HTML comment in Markdown and a comment in
reStructuredText::

    <!-- snippet: NAME -->                 .. snippet: NAME
    ```python                              .. code-block:: python

The marker may add, after commas: ``continues OTHER`` (the block runs after the snippet OTHER, in the same
namespace), ``file PATH`` (the block is a file of the reader's project, written there by its check rather than
run), ``not-runnable, because ...`` (only compiled; say why, and use it sparingly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.examples import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"

#: The comment right before a block: ``<!-- KIND: TEXT -->`` in Markdown, ``.. KIND: TEXT`` in reStructuredText.
MARKDOWN_MARKER = re.compile(r"<!--\s*([a-z]+):\s*(.*?)\s*-->")
RST_MARKER = re.compile(r"\.\.\s+([a-z]+):\s*(.*?)\s*")
SPEC = re.compile(
    r"(?P<name>[a-z0-9-]+)"
    r"(?:, continues (?P<continues>[a-z0-9-]+))?"
    r"(?:, file (?P<file>[\w./-]+))?"
    r"(?:, (?P<not_runnable>not-runnable, because .{10,}))?"
)


@dataclass(frozen=True)
class Block:
    """A code block of a page: its language, where its code starts, the code and the marker before it."""

    language: str
    where: str
    code: str
    #: ``(kind, text)`` of the marker comment right before the block (``("snippet", "flask-app")``), if any.
    marker: tuple[str, str] | None


def markdown_blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    fence: str | None = None  # the language of the open fence
    before = ""
    code: list[str] = []
    marker: re.Match[str] | None = None
    start = 0
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = text.strip()
        if fence is None and stripped.startswith("```"):
            fence, start, code = stripped[3:], number, []
            marker = MARKDOWN_MARKER.fullmatch(before)
        elif fence is not None and stripped == "```":
            where = f"{path.relative_to(ROOT)}:{start + 1}"
            found.append(Block(fence, where, "\n".join(code) + "\n", marker and (marker[1], marker[2])))
            fence = None
        elif fence is not None:
            code.append(text)
        if fence is None and stripped and not stripped.startswith("```"):
            before = stripped
    return found


def rst_blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines):
        directive = re.fullmatch(r"(\s*)\.\. code-block:: (\S+)\s*", text)
        if not directive:
            continue
        inside = " " * (len(directive[1]) + 1)
        end = number + 1
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith(inside)):
            end += 1
        # The directive's options (``:caption: ...``) come first, then a blank line, then the code.
        block = [line for line in lines[number + 1 : end] if not line.strip().startswith(":")]
        margin = min(len(line) - len(line.lstrip()) for line in block if line.strip())
        code = "\n".join(line[margin:] for line in block).strip("\n") + "\n"
        marker = RST_MARKER.fullmatch(lines[number - 1].strip())
        where = f"{path.relative_to(ROOT)}:{number + 1}"
        found.append(Block(directive[2], where, code, marker and (marker[1], marker[2])))
    return found


def pages() -> list[Path]:
    """The README and every page of the documentation."""
    return [README, *(p for p in sorted(DOCS.rglob("*.rst")) if "_build" not in p.parts)]


def blocks(page: Path) -> list[Block]:
    return markdown_blocks(page) if page.suffix == ".md" else rst_blocks(page)


@dataclass(frozen=True)
class Snippet:
    #: Where the block starts, as ``docs/flask.rst:12``.
    where: str
    code: str
    #: The marker's text, or None when the block has none.
    marker: str | None

    @property
    def spec(self) -> re.Match[str] | None:
        return SPEC.fullmatch(self.marker) if self.marker else None

    @property
    def name(self) -> str:
        return self.spec["name"] if self.spec else self.where

    @property
    def continues(self) -> str | None:
        return self.spec["continues"] if self.spec else None

    @property
    def file(self) -> str | None:
        return self.spec["file"] if self.spec else None

    @property
    def runnable(self) -> bool:
        return self.spec is not None and not self.spec["not_runnable"]


def all_snippets() -> list[Snippet]:
    """Every ``python`` block of the README and the documentation, in reading order."""
    return [
        Snippet(block.where, block.code, block.marker[1] if block.marker and block.marker[0] == "snippet" else None)
        for page in pages()
        for block in blocks(page)
        if block.language == "python"
    ]
