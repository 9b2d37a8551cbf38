"""``python -m benchmarks.loc [PATH ...]``: code lines of the package, without blanks, comments or docstrings.

A line counts when it holds a token that is neither a comment nor part of a docstring (the first statement of a
module, class or function, when it is a string).
"""

from __future__ import annotations

import ast
import sys
import tokenize
from collections.abc import Iterable
from pathlib import Path

_LAYOUT = {
    tokenize.ENCODING,
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(path: Path) -> int:
    """The number of lines of ``path`` that hold code."""
    docstrings = _docstring_lines(ast.parse(path.read_bytes()))
    with path.open("rb") as file:
        tokens = tokenize.tokenize(file.readline)
        lines = {
            line for token in tokens if token.type not in _LAYOUT for line in range(token.start[0], token.end[0] + 1)
        }
    return len(lines - docstrings)


def count(paths: Iterable[Path]) -> int:
    return sum(code_lines(file) for path in paths for file in sorted(path.rglob("*.py") if path.is_dir() else [path]))


def main(argv: list[str]) -> int:
    print(count(Path(arg) for arg in argv or ["flask_authgear"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
