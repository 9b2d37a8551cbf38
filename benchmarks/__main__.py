"""``python -m benchmarks [--quick]``: every table of ``make bench``, measured in one run on this machine."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Sequence

from flask_authgear.testing import AuthgearTestServer

from . import apps, breakdown, http_load, instructions, micro, report, scaling
from .tokens import mint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds and smaller pools (well under a minute)")
    size.add_argument("--smoke", action="store_true", help="the smallest run printing every table (for tests)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (the median is reported)")
    parser.add_argument("--no-http", action="store_true", help="skip the real HTTP run with gunicorn")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip the instruction counts (valgrind, a few minutes)"
    )
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers")
    args = parser.parse_args(argv)
    # Authlib announces its own API changes as warnings; they say nothing about these measurements.
    warnings.filterwarnings("ignore", module="authlib")
    warnings.filterwarnings("ignore", message=".*[Aa]uthlib.*")

    if args.smoke:
        sizes, scale, http = micro.SMOKE, scaling.SMOKE, http_load.SMOKE
    elif args.quick:
        sizes, scale, http = micro.QUICK, scaling.QUICK, http_load.QUICK
    else:
        sizes, scale, http = micro.FULL, scaling.FULL, http_load.FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
        scale = dataclasses.replace(scale, rounds=args.rounds)
    started = time.perf_counter()
    flags = " ".join(a for a in (sys.argv[1:] if argv is None else argv))
    print(f"flask-authgear benchmarks: python -m benchmarks {flags}".rstrip())
    print(f"machine: {report.machine_line()}")
    print(
        f"{sizes.rounds} interleaved rounds per row, median reported; CPU time of the calling thread "
        "(wall time for the resolver miss); overhead = (request - bare Flask request timed just before it)"
    )
    print()
    with AuthgearTestServer() as server:
        results = micro.measure(server, sizes)
        _print(report.per_request_table(results))
        _print(report.targets(results))
        parts = breakdown.measure(server.settings(), mint(server, "user-1"), apps.bare_app(), sizes.calls, sizes.rounds)
        _print(report.breakdown_table(parts, results.cost[micro.RAW]))
        if not args.no_scaling:
            rows = scaling.measure(server, scale)
            _print(report.scaling_table("scaling: cost per request (core verifier)", scaling.COLUMNS, rows))
        if not (args.no_instructions or args.smoke):
            if instructions.available():
                counted = instructions.measure(server, instructions.QUICK if args.quick else instructions.FULL)
                _print(instructions.table(counted))
                _print(instructions.breakdown_table(counted))
                _print(instructions.targets(counted))
            else:
                _print(["instruction counts: skipped, valgrind is not installed (apt-get install valgrind)"])
        if not args.no_http:
            rows_http = http_load.measure(server, http, args.workers)
            print(f"gunicorn {args.workers} sync workers, {http.clients} client threads, same machine")
            _print(report.http_table(rows_http, rows_http[0][1]))
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
