"""The verdicts the troubleshooting page quotes are the ones ``flask-authgear verify`` prints for each mistake.

Each ``text`` block of the page that quotes a ``FAIL`` line is matched, line by line, against the output of
``verify`` for one of the mistakes below (``...`` stands for any text, ``https://myapp.authgear.cloud`` for the
endpoint). A message that changes in the code changes on the page, or this fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from flask_authgear.cli import cli
from flask_authgear.testing import AuthgearTestServer

from .snippets import DOCS

PAGE = DOCS / "troubleshooting.rst"


def quoted_verdicts() -> list[list[str]]:
    """The lines of every ``.. code-block:: text`` of the page that quotes a FAIL line."""
    blocks: list[list[str]] = []
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines):
        if text.strip() != ".. code-block:: text":
            continue
        block = []
        for line in lines[number + 1 :]:
            if line.strip() and not line.startswith(" "):
                break
            if line.strip():
                block.append(line.strip())
        if any(line.startswith("FAIL") for line in block):
            blocks.append(block)
    return blocks


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, str]]:
    """``verify``'s output for each common mistake, with the server's endpoint written as the page writes it."""
    with AuthgearTestServer() as server, AuthgearTestServer() as other_project:
        tokens = {
            "custom domain": server.issue_token("alice", iss="https://auth.example.com"),
            "resource audience": server.issue_token("alice", aud=["https://api.example.com"]),
            "ID token": server.issue_token("alice", header={"typ": "JWT"}),
            "another project": other_project.issue_token("alice", iss=server.endpoint, aud=[server.endpoint]),
            "opaque token": "0pAqUe-t0ken",
        }
        runner = CliRunner()
        found = {}
        for mistake, token in tokens.items():
            result = runner.invoke(cli, ["verify", token, "--endpoint", server.endpoint])
            assert result.exit_code == 1, result.output
            found[mistake] = result.output.replace(server.endpoint, "https://myapp.authgear.cloud")
        yield found


def matches(quoted: list[str], output: str) -> bool:
    printed = [" ".join(line.split()) for line in output.splitlines()]
    for line in quoted:
        pattern = ".+".join(re.escape(part) for part in " ".join(line.split()).split("..."))
        if not any(re.fullmatch(pattern, p) for p in printed):
            return False
    return True


def test_the_page_quotes_each_common_mistake() -> None:
    assert len(quoted_verdicts()) >= 5


@pytest.mark.parametrize("block", quoted_verdicts(), ids=lambda block: block[0].split()[1])
def test_each_quoted_verdict_is_what_verify_prints(block: list[str], outputs: dict[str, str]) -> None:
    assert any(matches(block, output) for output in outputs.values()), "\n".join(block)


def test_each_mistake_is_on_the_page(outputs: dict[str, str]) -> None:
    for mistake, output in outputs.items():
        assert any(matches(block, output) for block in quoted_verdicts()), mistake
