"""``make bench`` runs end to end: the smallest configuration prints every row of every table.

Timings are never asserted here (they belong to the benchmark's report); only that each measurement ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flask_authgear.testing import AuthgearTestServer
from tests.support.examples import ROOT

pytestmark = pytest.mark.bench

# The benchmarks measure PyJWT and Authlib beside this library and serve over HTTP with gunicorn: the three come
# with the bench extra, which `make test` installs and `pip install .[dev]` does not.
for _peer in ("jwt", "authlib", "gunicorn"):
    pytest.importorskip(
        _peer, reason=f"the benchmarks need the bench extra ({_peer} is missing): pip install '.[bench]'"
    )

from benchmarks import breakdown, http_load, instructions, micro, scaling  # noqa: E402

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


def test_every_instruction_count_case_runs(tmp_path: Path) -> None:
    """The children valgrind runs, run here without it: every case makes its calls and answers as expected."""
    spec = tmp_path / "spec.json"
    with AuthgearTestServer() as server:
        instructions.write_spec(server, warmup=2, fresh_calls=3, path=str(spec))
        for case in instructions.CASES:
            assert instructions.child([case, "3", str(spec)]) == 0, case
        # A cold case never reuses a token: past the ones minted for it, it stops.
        with pytest.raises(StopIteration):
            step = instructions._step("flask_cold", json.loads(spec.read_text()))
            for _ in range(6):
                step(None, None)


def test_instruction_tables_take_off_the_loop_and_compare_with_the_bare_request() -> None:
    per_call = {
        instructions.BARE: 1_000.0,
        instructions.RAW: 400.0,
        instructions.CORE_COLD: 500.0,
        instructions.CORE_WARM: 10.0,
        instructions.FLASK_COLD: 1_700.0,  # overhead 700: 1.75x raw, met
        instructions.FLASK_WARM: 1_110.0,  # overhead 110: 0.275x raw, not met
        instructions.WSGI_WARM: 1_040.0,  # overhead 40: 0.1x raw, met
        instructions.PYJWT: 3_200.0,  # overhead 2,200: 3.1x the cold overhead, met
        instructions.AUTHLIB: 2_000.0,
        instructions.RESOLVER_HIT: 1_040.0,  # overhead 40: 0.1x raw, met
        instructions.NO_WRAPPER: 1_060.0,
        instructions.VIEW_PLAIN: 1_070.0,
        instructions.DIRECT: 1_020.0,
    }
    added = instructions.overheads(per_call)
    assert added[instructions.RAW] == 400.0 and added[instructions.FLASK_WARM] == 110.0
    cold, pyjwt, warm, hit, wsgi = instructions.targets(per_call)[1:]
    assert "1.75x" in cold and cold.endswith(" met")
    assert "3.1x lower" in pyjwt and pyjwt.endswith(" met")
    assert "0.275x" in warm and warm.endswith("NOT MET")
    assert "0.100x" in hit and hit.endswith(" met")
    assert "0.100x" in wsgi and wsgi.endswith(" met")
    table = "\n".join(instructions.table(per_call))
    assert "1,000" in table and "1.750x" in table and "empty loop" not in table
    assert instructions.NO_WRAPPER not in table
    parts = instructions.breakdown_table(per_call)
    assert [line.split()[-1] for line in parts[1:]] == ["-", "50", "40", "90"]
