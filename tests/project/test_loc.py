"""``make loc`` counts code lines: no blanks, comments or docstrings."""

from __future__ import annotations

from pathlib import Path

from benchmarks.loc import code_lines

SAMPLE = '''"""A module docstring
on two lines."""

import os  # a comment after code counts


# a comment alone does not
class A:
    """A class docstring."""

    x = """a string that is
    not a docstring"""

    def f(self) -> str:
        """A function docstring."""
        return os.sep
'''


def test_code_lines_leave_out_blanks_comments_and_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    assert code_lines(sample) == 6  # import, class, the two-line string, def, return
