"""The shell sessions of the README and the quickstart run as written, with the outputs they show.

A ``console`` block marked ``<!-- console: NAME -->`` (README) or ``.. console: NAME`` (docs) belongs to the
session NAME; the blocks of a session run in reading order in one bash, in a folder holding ``app.py`` (the
snippet ``NAME-app``), with the package's commands on the PATH and nothing else of the test environment's
``AUTHGEAR_*``. Each ``$`` command's documented output must match what it printed, line by line (a line
``...`` stands for any lines, and ``...`` inside a line for any text). The documentation's ports 9000 (dev
server) and 5000 (``flask run``) become free ones. A command that ends in ``&``, or ``flask-authgear dev-server``
(which the page runs in a terminal of its own), runs in the background until it answers; ``kill %%`` also waits
for the process to end. A ``text`` block marked ``NAME, log`` holds lines the background processes logged.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .snippets import Block, all_snippets, blocks, pages

SNIPPETS = {s.name: s for s in all_snippets()}


@dataclass
class Step:
    command: str
    #: The documented output, one line each.
    output: list[str]
    where: str

    @property
    def background(self) -> bool:
        return self.command.endswith("&") or self.command.startswith("flask-authgear dev-server")

    @property
    def expected(self) -> list[str]:
        """The documented output; a background process may print more than the page shows, later."""
        return [*self.output, "..."] if self.background else self.output


@dataclass
class Session:
    name: str
    steps: list[Step] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)


def sessions() -> list[Session]:
    found: dict[str, Session] = {}
    for page in pages():
        for block in blocks(page):
            if block.marker is None or block.marker[0] != "console":
                continue
            name, _, kind = block.marker[1].partition(", ")
            session = found.setdefault(name, Session(name))
            if kind == "log":
                session.log_lines += [line.strip() for line in block.code.splitlines() if line.strip()]
            else:
                session.steps += steps(block)
    return list(found.values())


def steps(block: Block) -> list[Step]:
    found: list[Step] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            found.append(Step(line[2:].split("  #")[0].strip(), [], block.where))
        elif line.strip():
            assert found, f"{block.where}: output before any command"
            found[-1].output.append(line.rstrip())
    return found


def line_pattern(documented: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in " ".join(documented.split()).split("...")))


def matches(documented: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` reads as ``documented``: every line in order, ``...`` lines standing for any lines."""
    printed = [" ".join(line.split()) for line in printed if line.strip()]
    if "..." not in documented:
        return len(documented) == len(printed) and all(
            line_pattern(d).fullmatch(p) for d, p in zip(documented, printed, strict=True)
        )
    at = 0
    for line in documented:
        if line.strip() == "...":
            continue
        pattern = line_pattern(line)
        while at < len(printed) and not pattern.fullmatch(printed[at]):
            at += 1
        if at == len(printed):
            return False
        at += 1
    return True


def script(session: Session, dev_port: int, app_port: int) -> str:
    """The session as one bash script, each command's output after a line ``@@@ <index>``."""
    lines = ["set -u"]
    for index, step in enumerate(session.steps):
        command = localize(step.command, dev_port, app_port)
        lines.append(f"printf '\\n@@@ {index}\\n'")  # on a line of its own, after output without a newline
        if step.background:
            log = f"background-{index}.log"
            lines.append(f"{command.rstrip('&').strip()} > {log} 2>&1 &")
            port = dev_port if command.startswith("flask-authgear dev-server") else app_port
            # Wait, bounded, until it answers (any HTTP status).
            lines.append(
                f"for _ in $(seq 300); do curl -s -o /dev/null http://127.0.0.1:{port}/ && break; sleep 0.1; done"
            )
            lines.append(f"cat {log}")
        elif command.startswith("kill %%"):
            lines.append("kill %% && wait $! 2>/dev/null")
        else:
            # A terminal shows no progress meter of curl: standard error is kept apart, for failures.
            lines.append(f"{command} 2>> errors.log")
    lines.append("printf '\\n@@@ end\\n'")
    return "\n".join(lines) + "\n"


def localize(text: str, dev_port: int, app_port: int) -> str:
    return re.sub(r"\b5000\b", str(app_port), re.sub(r"\b9000\b", str(dev_port), text))


def quiet_port() -> int:
    """A free loopback port below the ephemeral range, which the machine's outgoing connections draw from: the
    servers of a session start a second or more after the port is chosen, long enough for a connection of another
    process to take a port of that range."""
    while True:
        port = random.randrange(20000, 30000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def run(session: Session, folder: Path) -> tuple[list[list[str]], str]:
    """Each step's printed lines, and everything the background processes logged."""
    dev_port = quiet_port()
    app_port = next(port for port in iter(quiet_port, None) if port != dev_port)
    (folder / "app.py").write_text(SNIPPETS[f"{session.name}-app"].code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGEAR_", "FLASK"))}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "FLASK_RUN_PORT": str(app_port),
        "FLASKAUTHGEAR_DEV_STATE": str(folder / "dev-server.json"),
    }
    process = subprocess.Popen(
        ["bash", "-c", script(session, dev_port, app_port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that every background process it started ends with it
    )
    try:
        out, _ = process.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    printed: list[list[str]] = []
    for chunk in re.split(r"^@@@ .*$\n?", out, flags=re.M)[1:]:
        printed.append([localize_back(line, dev_port, app_port) for line in chunk.splitlines()])
    logs = "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.log")))
    return printed, localize_back(logs, dev_port, app_port)


def localize_back(text: str, dev_port: int, app_port: int) -> str:
    return re.sub(rf"\b{app_port}\b", "5000", re.sub(rf"\b{dev_port}\b", "9000", text))


SESSIONS = sessions()


def test_the_readme_and_the_quickstart_have_sessions() -> None:
    assert {s.name for s in SESSIONS} >= {"readme", "quickstart"}
    for session in SESSIONS:
        assert f"{session.name}-app" in SNIPPETS, f"the session {session.name} runs the snippet {session.name}-app"


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented sessions use curl")
@pytest.mark.parametrize("session", SESSIONS, ids=[s.name for s in SESSIONS])
def test_session_prints_what_the_page_shows(session: Session, tmp_path: Path) -> None:
    printed, logs = run(session, tmp_path)
    assert len(printed) == len(session.steps) + 1, "the session stopped early:\n" + "\n".join(map(str, printed))
    for step, lines in zip(session.steps, printed, strict=False):
        assert matches(step.expected, lines), (
            f"{step.where}: $ {step.command}\n--- the page shows:\n"
            + "\n".join(step.output)
            + "\n--- it printed:\n"
            + "\n".join(lines)
        )
    for line in session.log_lines:
        assert line_pattern(line).search(" ".join(logs.split())), f"not logged: {line}\n--- logs:\n{logs}"


def test_matching_reads_ellipses_and_exact_blocks() -> None:
    assert matches(["a", "...", "c ... e"], ["a", "b", "c d e", "f"])
    assert not matches(["a", "c"], ["a", "b", "c"])
    assert matches([], [])
    assert not matches([], ["unexpected"])
