"""Printing the tables: cost per request, overhead over bare Flask, and that overhead as a multiple of a raw verify."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from . import micro

_PACKAGES = ("Flask", "Werkzeug", "cryptography", "joserfc", "requests-cache", "PyJWT", "Authlib", "gunicorn")


def machine_line() -> str:
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{load}, "
        f"Python {platform.python_version()}; {', '.join(versions)}"
    )


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} us"


def per_request_table(results: micro.Results) -> list[str]:
    raw = results.cost[micro.RAW]
    width = max(len(row) for row in micro.ROWS)
    lines = [f"{'per request (direct WSGI calls)':<{width}}  {'cost':>11}  {'overhead':>11}  {'x raw verify':>12}"]
    for row in micro.ROWS:
        if row == micro.BARE:
            lines.append(f"{row:<{width}}  {us(results.cost[row]):>11}  {'-':>11}  {'-':>12}")
            continue
        added = results.overhead[row]
        cost = "-" if row in micro.DERIVED_ROWS else us(results.cost[row])
        lines.append(f"{row:<{width}}  {cost:>11}  {us(added):>11}  {added / raw:>11.2f}x")
    return lines


def target_checks(raw: float, overhead: dict[str, float]) -> list[tuple[str, str, bool]]:
    """The performance targets as (name, value, met), from one run's raw verify and overheads (either unit)."""
    cold, warm, hit = overhead[micro.FLASK_COLD], overhead[micro.FLASK_WARM], overhead[micro.RESOLVER_HIT]
    wsgi, pyjwt = overhead[micro.WSGI_WARM], overhead[micro.PYJWT]
    return [
        ("JWT cold overhead (Flask) <= 1.8x raw verify", f"{cold / raw:.2f}x", cold / raw <= 1.8),
        ("JWT cold overhead >= 2.8x lower than PyJWT decorator", f"{pyjwt / cold:.1f}x lower", pyjwt / cold >= 2.8),
        ("JWT warm overhead (Flask) <= 0.26x raw verify", f"{warm / raw:.3f}x", warm / raw <= 0.26),
        ("resolver hit overhead (Flask) <= 0.28x raw verify", f"{hit / raw:.3f}x", hit / raw <= 0.28),
        ("JWT warm overhead (WSGI middleware) <= 0.16x raw verify", f"{wsgi / raw:.3f}x", wsgi / raw <= 0.16),
    ]


def target_lines(title: str, checks: list[tuple[str, str, bool]]) -> list[str]:
    width = max(len(name) for name, _, _ in checks)
    return [title] + [f"  {name:<{width}}  {value:>12}  {'met' if ok else 'NOT MET'}" for name, value, ok in checks]


def targets(results: micro.Results) -> list[str]:
    """The performance targets, as ratios measured in this run (reported, never asserted)."""
    raw = results.cost[micro.RAW]
    cold, hit = results.overhead[micro.FLASK_COLD], results.overhead[micro.RESOLVER_HIT]
    lines = target_lines("targets (ratios of this run)", target_checks(raw, results.overhead))
    width = max(len(line) for line in lines) - 16
    in_flask = results.overhead[micro.RAW_IN_FLASK]
    lines.append(f"  {'JWT cold overhead / raw verify inside a Flask view':<{width}}  {cold / in_flask:>11.2f}x")
    ratio = f"{results.cost[micro.REQUESTS_CACHE] / hit:.0f}x cheaper" if hit > 0 else "n/a"
    lines.append(f"  {'resolver hit vs plain requests-cache hit':<{width}}  {ratio:>12}")
    return lines


def scaling_table(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]]) -> list[str]:
    width = max(len(title), *(len(name) for name, _ in rows))
    lines = [f"{title:<{width}}  " + "  ".join(f"{c:>11}" for c in columns)]
    for name, values in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{us(v):>11}" for v in values))
    return lines


def http_table(rows: Sequence[tuple[str, float, int]], bare_rps: float) -> list[str]:
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'real HTTP (gunicorn, loopback)':<{width}}  {'req/s':>9}  {'vs bare':>8}  {'answered':>8}"]
    for name, rps, count in rows:
        lines.append(f"{name:<{width}}  {rps:>9,.0f}  {rps / bare_rps:>7.0%}  {count:>8,}")
    return lines


def breakdown_table(rows: Sequence[tuple[str, float]], raw: float) -> list[str]:
    full = rows[0][1]
    width = max(len(name) for name, _ in rows)
    title = "where the Flask extension's warm overhead goes"
    lines = [f"{title:<{width}}  {'overhead':>11}  {'x raw verify':>12}  {'saves':>11}"]
    for index, (name, added) in enumerate(rows):
        saves = "-" if index == 0 else us(full - added)
        lines.append(f"{name:<{width}}  {us(added):>11}  {added / raw:>11.2f}x  {saves:>11}")
    return lines
