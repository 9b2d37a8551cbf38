"""Per-request costs by direct WSGI calls, all measured in the same interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests_cache
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import RSAKey

from flask_authgear import Settings
from flask_authgear.core import Verifier
from flask_authgear.testing import AuthgearTestServer

from . import apps
from .harness import Case, WSGICaller, each_batch, environ, repeat_batch, run_rounds
from .tokens import mint_pool, signature_parts


@dataclass(frozen=True)
class Sizes:
    """How much work each round does; ``quick`` keeps the whole run short."""

    rounds: int
    calls: int  # warm and hit cases: calls per round
    pool: int  # cold cases: distinct fresh tokens per round
    misses: int  # resolver misses per round (each one an HTTP call)


FULL = Sizes(rounds=31, calls=400, pool=100, misses=20)
QUICK = Sizes(rounds=15, calls=150, pool=40, misses=8)
SMOKE = Sizes(rounds=1, calls=20, pool=10, misses=2)

BARE = "bare Flask request (direct WSGI, JSON response)"
RAW = "raw RS256 verify (cryptography)"
RAW_IN_FLASK = "bare Flask + raw RS256 verify in the view (control)"
CORE_COLD = "core Verifier, JWT cold (fresh token)"
CORE_WARM = "core Verifier, JWT warm (repeated token)"
FLASK_COLD = "Flask extension, JWT cold (fresh token)"
FLASK_WARM = "Flask extension, JWT warm (repeated token)"
WSGI_COLD = "WSGI middleware, JWT cold (fresh token)"
WSGI_WARM = "WSGI middleware, JWT warm (repeated token)"
PYJWT = "PyJWT + PyJWKClient decorator (Authgear guide)"
AUTHLIB = "Authlib ResourceProtector, RFC 9068 validator"
RESOLVER_HIT = "Flask extension, resolver hit (in-process)"
RESOLVER_SHARED = "Flask extension, resolver hit (requests-cache level)"
RESOLVER_MISS = "Flask extension, resolver miss (HTTP call)"
REQUESTS_CACHE = "plain requests-cache hit (memory backend)"
EXTENSION_OWN = "Flask extension's own work (warm Flask - warm core)"
MIDDLEWARE_OWN = "WSGI middleware's own work (warm WSGI - warm core)"

#: Every row of the table, in print order. Rows whose cost is not a whole request are components.
ROWS = (
    BARE,
    RAW,
    RAW_IN_FLASK,
    CORE_COLD,
    CORE_WARM,
    FLASK_COLD,
    FLASK_WARM,
    WSGI_COLD,
    WSGI_WARM,
    EXTENSION_OWN,
    MIDDLEWARE_OWN,
    PYJWT,
    AUTHLIB,
    RESOLVER_HIT,
    RESOLVER_SHARED,
    RESOLVER_MISS,
    REQUESTS_CACHE,
)
#: Rows computed from others (a difference of two medians), not measured on their own.
DERIVED_ROWS = frozenset({EXTENSION_OWN, MIDDLEWARE_OWN})
#: Rows measured through a Flask app: their overhead is (cost - bare Flask). The others are components whose
#: whole cost is what they add to a request.
REQUEST_ROWS = frozenset(
    {RAW_IN_FLASK, FLASK_COLD, FLASK_WARM, WSGI_COLD, WSGI_WARM, PYJWT, AUTHLIB}
    | {RESOLVER_HIT, RESOLVER_SHARED, RESOLVER_MISS}
)


def _clear_token_cache(verifier: Verifier) -> Callable[[], None]:
    def clear() -> None:
        cache = verifier.jwt.cache
        if cache is not None:
            cache.clear()

    return clear


@dataclass(frozen=True)
class Results:
    """Seconds per call: ``cost`` of each measured row, ``overhead`` of every row (what it adds to a request).

    A request row's overhead is the median over rounds of (its batch - a bare-Flask batch timed just before
    it); a component's overhead is its cost; a derived row is a difference of two overheads.
    """

    cost: dict[str, float]
    overhead: dict[str, float]


def measure(server: AuthgearTestServer, sizes: Sizes) -> Results:
    """Measure every row in interleaved rounds."""
    settings = server.settings()
    endpoint = server.endpoint
    pool = mint_pool(server, sizes.pool)
    warm_token = pool[0]
    bearer_envs = [environ("/me", f"Bearer {token}") for token in pool]
    warm_env = environ("/me", f"Bearer {warm_token}")
    cases: list[Case] = []

    bare = WSGICaller(apps.bare_app())
    bare_env = environ("/me")
    bare.check(bare_env)
    baseline = Case(BARE, bare.batch([bare_env] * sizes.calls))
    cases.append(baseline)

    public = RSAKey.import_key(server.jwks()["keys"][0]).public_key
    parts = [signature_parts(token) for token in pool]
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    cases.append(Case(RAW, each_batch(lambda p: public.verify(p[1], p[0], pkcs1, sha256), parts)))
    control = WSGICaller(apps.raw_verify_app(public))
    control.check(warm_env)
    cases.append(Case(RAW_IN_FLASK, control.batch(bearer_envs)))

    core = Verifier(Settings(**settings))
    cases.append(Case(CORE_COLD, each_batch(core.verify_token, pool), _clear_token_cache(core)))
    core.verify_token(warm_token)
    cases.append(Case(CORE_WARM, repeat_batch(lambda: core.verify_token(warm_token), sizes.calls)))

    for cold_name, warm_name, factory in (
        (FLASK_COLD, FLASK_WARM, apps.authgear_app),
        (WSGI_COLD, WSGI_WARM, apps.middleware_app),
    ):
        app, verifier = factory(**settings)
        caller = WSGICaller(app)
        caller.check(warm_env, contains=b"user-0")
        cases.append(Case(cold_name, caller.batch(bearer_envs), _clear_token_cache(verifier)))
        cases.append(Case(warm_name, caller.batch([warm_env] * sizes.calls)))

    for name, peer in ((PYJWT, apps.pyjwt_app(endpoint)), (AUTHLIB, apps.authlib_app(endpoint))):
        caller = WSGICaller(peer)
        caller.check(warm_env, contains=b"user-0")
        cases.append(Case(name, caller.batch(bearer_envs)))

    resolver_app, resolver_verifier = apps.authgear_app(**settings, mode="resolver")
    resolver = resolver_verifier.resolver
    assert resolver is not None
    caller = WSGICaller(resolver_app)
    session = server.create_session("user-0")
    session_env = environ("/me", session.authorization)
    caller.check(session_env, contains=b"user-0")
    cases.append(Case(RESOLVER_HIT, caller.batch([session_env] * sizes.calls)))
    cases.append(Case(RESOLVER_SHARED, caller.batch([session_env]), resolver.local.clear))
    fresh = sizes.misses * (sizes.rounds + 1)  # one slice per round, and one for the warm-up
    miss_envs = [environ("/me", server.create_session(f"user-{i}").authorization) for i in range(fresh)]
    rotation = _Rotation(miss_envs, sizes.misses)
    cases.append(Case(RESOLVER_MISS, lambda: caller.batch(rotation.next())(), clock=time.perf_counter))

    http = requests_cache.CachedSession(backend="memory", expire_after=300)
    url, headers = f"{endpoint}/_resolver/resolve", {"Authorization": session.authorization, "Host": server.host_header}
    http.get(url, headers=headers)
    if not http.get(url, headers=headers).from_cache:  # type: ignore[attr-defined]
        raise RuntimeError("requests-cache did not answer from its cache")
    cases.append(Case(REQUESTS_CACHE, repeat_batch(lambda: http.get(url, headers=headers), max(sizes.calls // 10, 20))))

    for case in cases:
        if case.name in REQUEST_ROWS:
            case.baseline = baseline
    run_rounds(cases, sizes.rounds)
    cost = {case.name: case.median for case in cases}
    added = {case.name: case.median_overhead if case.baseline is not None else case.median for case in cases}
    added[EXTENSION_OWN] = added[FLASK_WARM] - added[CORE_WARM]
    added[MIDDLEWARE_OWN] = added[WSGI_WARM] - added[CORE_WARM]
    resolver_verifier.close()
    http.close()
    return Results(cost=cost, overhead=added)


class _Rotation:
    """Hands out successive slices of never-seen credentials, so every resolver call is a true miss."""

    def __init__(self, envs: list[dict[str, Any]], size: int) -> None:
        self.envs, self.size, self.at = envs, size, 0

    def next(self) -> list[dict[str, Any]]:
        if self.at + self.size > len(self.envs):
            raise RuntimeError("not enough fresh sessions for the resolver-miss rounds")
        chunk = self.envs[self.at : self.at + self.size]
        self.at += self.size
        return chunk
