"""``make bench`` runs end to end: the smallest configuration prints every row of every table.

Timings are never asserted here (they belong to the benchmark's report); only that each measurement ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import breakdown, http_load, micro, scaling

ROOT = Path(__file__).resolve().parent.parent
MICROSECONDS = re.compile(r"-?[\d,]+\.\d us\b")


@pytest.fixture(scope="module")
def smoke_output() -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHGEAR_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_every_per_request_row_is_printed_with_a_number(smoke_output: str) -> None:
    lines = smoke_output.splitlines()
    for row in micro.ROWS:
        matching = [line for line in lines if line.startswith(row)]
        assert len(matching) == 1, row
        assert MICROSECONDS.search(matching[0]) and "n/a" not in matching[0], matching[0]


@pytest.mark.slow
def test_targets_scaling_and_http_tables_are_printed(smoke_output: str) -> None:
    assert "targets (ratios of this run)" in smoke_output
    for target in ("JWT cold overhead", "JWT warm overhead", "resolver hit overhead", "PyJWT decorator"):
        assert target in smoke_output
    for row in scaling.ROWS:
        matching = [line for line in smoke_output.splitlines() if line.startswith(row)]
        assert len(matching) == 1 and len(MICROSECONDS.findall(matching[0])) == 3, smoke_output
    for row in breakdown.ROWS:
        assert any(line.startswith(row) and MICROSECONDS.search(line) for line in smoke_output.splitlines()), row
    for row in http_load.ROWS:
        assert any(line.startswith(row) for line in smoke_output.splitlines()), row
    assert "machine: " in smoke_output and "total time" in smoke_output


def test_the_bench_help_lists_the_quick_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--no-http" in done.stdout
