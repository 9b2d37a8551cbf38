"""Instructions per request, counted by valgrind's callgrind: the same rows as the timed table, without the noise.

On a shared machine the time of one request swings by tens of microseconds between runs; the number of
instructions it executes does not. Each case runs in a process of its own under ``valgrind --tool=callgrind``,
which counts only inside ``functools.reduce``, the loop that makes the calls (after a warm-up, so the
interpreter's caches and specialisations have settled). The local Authgear server runs in the measuring,
uninstrumented process, so its work is never counted. An empty loop is counted too and taken off every row.

Instructions are not time: the signature check's big-number code retires several instructions per cycle and
the interpreter's fewer, so on real hardware a time ratio reads worse than the instruction ratio of the same
rows. Both tables are printed; neither is asserted anywhere. Skipped when valgrind is not installed.

Run by hand: ``python -m benchmarks.instructions CASE CALLS SPEC`` is the child that valgrind runs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask_authgear.testing import AuthgearTestServer

from . import breakdown, report
from .tokens import mint, mint_pool

NULL = "empty loop (taken off every row)"
BARE = "bare Flask request (direct WSGI, JSON response)"
RAW = "raw RS256 verify (cryptography)"
CORE_COLD = "core Verifier, JWT cold (fresh token)"
CORE_WARM = "core Verifier, JWT warm (repeated token)"
FLASK_COLD = "Flask extension, JWT cold (fresh token)"
FLASK_WARM = "Flask extension, JWT warm (repeated token)"
WSGI_WARM = "WSGI middleware, JWT warm (repeated token)"
PYJWT = "PyJWT + PyJWKClient decorator (Authgear guide)"
AUTHLIB = "Authlib ResourceProtector, RFC 9068 validator"
RESOLVER_HIT = "Flask extension, resolver hit (in-process)"
NO_WRAPPER = breakdown.NO_WRAPPER
VIEW_PLAIN = breakdown.VIEW_PLAIN
DIRECT = breakdown.DIRECT

#: Case name on the child's command line -> row.
CASES = {
    "null": NULL,
    "bare": BARE,
    "raw": RAW,
    "core_cold": CORE_COLD,
    "core_warm": CORE_WARM,
    "flask_cold": FLASK_COLD,
    "flask_warm": FLASK_WARM,
    "wsgi_warm": WSGI_WARM,
    "pyjwt": PYJWT,
    "authlib": AUTHLIB,
    "resolver_hit": RESOLVER_HIT,
    "no_wrapper": NO_WRAPPER,
    "view_plain": VIEW_PLAIN,
    "direct": DIRECT,
}
#: The breakdown of the Flask extension's warm overhead: variants that each remove one piece.
BREAKDOWN = (FLASK_WARM, NO_WRAPPER, VIEW_PLAIN, DIRECT)
#: Rows whose whole count is what they add (components), as opposed to requests compared with the bare one.
COMPONENTS = frozenset({RAW, CORE_COLD, CORE_WARM})
#: Cases that need a token never seen before on every call.
FRESH = frozenset({"raw", "core_cold", "flask_cold", "pyjwt", "authlib"})
_COLLECTED = re.compile(r"Collected\s*:\s*([0-9]+)")


@dataclass(frozen=True)
class Sizes:
    warm_calls: int
    cold_calls: int  # each needs a freshly minted token
    warmup: int
    jobs: int  # valgrind processes at a time


FULL = Sizes(warm_calls=1_000, cold_calls=200, warmup=100, jobs=2)
QUICK = Sizes(warm_calls=200, cold_calls=50, warmup=50, jobs=2)


def available() -> bool:
    return shutil.which("valgrind") is not None


def measure(server: AuthgearTestServer, sizes: Sizes) -> dict[str, float]:
    """Instructions per call of every row, the empty loop already taken off. Raises RuntimeError on failure."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "spec.json")
        write_spec(server, sizes.warmup, sizes.cold_calls, path)

        def count(case: str) -> float:
            calls = sizes.cold_calls if case in FRESH else sizes.warm_calls
            return _count(case, calls, path) / calls

        with ThreadPoolExecutor(max_workers=sizes.jobs) as pool:
            per_call = dict(zip(CASES.values(), pool.map(count, CASES), strict=True))
    loop = per_call.pop(NULL)
    return {row: value - loop for row, value in per_call.items()}


def write_spec(server: AuthgearTestServer, warmup: int, fresh_calls: int, path: str) -> None:
    """What every child needs, minted here at full speed: settings, tokens, a resolver session."""
    spec = {
        "settings": server.settings(),
        "endpoint": server.endpoint,
        "warm_token": mint(server, "user-0"),
        "fresh_tokens": mint_pool(server, warmup + fresh_calls),
        "session_authorization": server.create_session("user-0").authorization,
        "warmup": warmup,
    }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(spec, file)


def _count(case: str, calls: int, spec: str) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--toggle-collect=functools_reduce",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        case,
        str(calls),
        spec,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dictionary layouts in every run
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"callgrind run of {case!r} failed: {done.stderr[-800:]}")
    collected = int(found[-1])
    if collected == 0:
        raise RuntimeError("callgrind counted nothing: this Python has no symbol for functools_reduce")
    return collected


def overheads(per_call: dict[str, float]) -> dict[str, float]:
    """What each row adds to a request: a component's whole count, a request's count minus the bare request's."""
    bare = per_call[BARE]
    return {row: value if row in COMPONENTS else value - bare for row, value in per_call.items() if row != BARE}


def table(per_call: dict[str, float]) -> list[str]:
    raw = per_call[RAW]
    added = overheads(per_call)
    rows = [row for row in CASES.values() if row != NULL and row not in BREAKDOWN[1:]]
    width = max(len(row) for row in rows)
    title = "instructions per request (callgrind)"
    lines = [f"{title:<{width}}  {'count':>10}  {'overhead':>10}  {'x raw verify':>12}"]
    for row in rows:
        if row == BARE:
            lines.append(f"{row:<{width}}  {per_call[row]:>10,.0f}  {'-':>10}  {'-':>12}")
        else:
            lines.append(f"{row:<{width}}  {per_call[row]:>10,.0f}  {added[row]:>10,.0f}  {added[row] / raw:>11.3f}x")
    return lines


def breakdown_table(per_call: dict[str, float]) -> list[str]:
    """Where the Flask extension's warm overhead goes, in instructions (see :mod:`benchmarks.breakdown`)."""
    raw = per_call[RAW]
    added = overheads(per_call)
    full = added[FLASK_WARM]
    width = max(len(row) for row in breakdown.ROWS)
    title = "where the warm overhead goes (instructions)"
    lines = [f"{title:<{width}}  {'overhead':>10}  {'x raw verify':>12}  {'saves':>10}"]
    for row, case in zip(breakdown.ROWS, BREAKDOWN, strict=True):
        saves = "-" if case == FLASK_WARM else f"{full - added[case]:,.0f}"
        lines.append(f"{row:<{width}}  {added[case]:>10,.0f}  {added[case] / raw:>11.3f}x  {saves:>10}")
    return lines


def targets(per_call: dict[str, float]) -> list[str]:
    """The targets computed on instruction counts (reported, never asserted)."""
    checks = report.target_checks(per_call[RAW], overheads(per_call))
    return report.target_lines("targets on instruction counts (ratios of this run)", checks)


# -- the child, run under valgrind ---------------------------------------------------------------------------


def _step(case: str, spec: dict[str, Any]) -> Callable[[Any, Any], Any]:
    """One call of ``case`` as a ``functools.reduce`` step."""
    from . import apps
    from .harness import WSGICaller, environ

    settings = spec["settings"]
    fresh: Iterator[str] = iter(spec["fresh_tokens"])
    warm_env = environ("/me", f"Bearer {spec['warm_token']}")
    if case == "null":
        return lambda acc, _: acc
    if case == "raw":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        from joserfc.jwk import KeySet

        from .tokens import signature_parts

        discovery = _get_json(f"{spec['endpoint']}/.well-known/openid-configuration")
        key_set = KeySet.import_key_set(_get_json(discovery["jwks_uri"]))
        public = key_set.keys[0].public_key  # type: ignore[attr-defined]
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        parts = iter([signature_parts(token) for token in spec["fresh_tokens"]])

        def raw(acc: Any, _: Any) -> Any:
            signing_input, signature = next(parts)
            public.verify(signature, signing_input, pkcs1, sha256)
            return acc

        return raw
    if case in ("core_cold", "core_warm"):
        from flask_authgear import Settings
        from flask_authgear.core import Verifier

        verifier = Verifier(Settings(**settings))
        if case == "core_warm":
            token = spec["warm_token"]
            return lambda acc, _: verifier.verify_token(token)
        return lambda acc, _: verifier.verify_token(next(fresh))
    if case == "bare":
        app: Any = apps.bare_app()
        env = environ("/me")
        caller = WSGICaller(app)
        return lambda acc, _: caller.call(env)
    if case == "resolver_hit":
        app, _ = apps.authgear_app(**settings, mode="resolver")
        env = environ("/me", spec["session_authorization"])
        caller = WSGICaller(app)
        return lambda acc, _: caller.call(env)
    if case in ("flask_cold", "flask_warm"):
        app, _ = apps.authgear_app(**settings)
    elif case in ("no_wrapper", "view_plain"):
        app = breakdown._app(case, settings, wrapper=case != "no_wrapper", proxy=case != "view_plain")
    elif case == "direct":
        app = breakdown._direct(settings)
    elif case == "wsgi_warm":
        app, _ = apps.middleware_app(**settings)
    elif case == "pyjwt":
        app = apps.pyjwt_app(spec["endpoint"])
    elif case == "authlib":
        app = apps.authlib_app(spec["endpoint"])
    else:
        raise SystemExit(f"unknown case {case!r}")
    caller = WSGICaller(app)
    if case in FRESH:
        envs = iter([environ("/me", f"Bearer {token}") for token in spec["fresh_tokens"]])  # built before counting
        return lambda acc, _: caller.call(next(envs))
    return lambda acc, _: caller.call(warm_env)


def _get_json(url: str) -> Any:
    import requests

    return requests.get(url, timeout=10).json()


def child(argv: Sequence[str]) -> int:
    case, calls, spec_path = argv[0], int(argv[1]), argv[2]
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    import warnings

    warnings.filterwarnings("ignore")  # Authlib's notices about its own API
    step = _step(case, spec)
    for _ in range(spec["warmup"]):
        step(None, None)
    functools.reduce(step, range(calls), None)
    return 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
