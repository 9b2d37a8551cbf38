"""A bounded load test over loopback HTTP: many threads, interleaved users, rotation and a resolver outage.

A Flask app in ``auto`` mode (JWT access tokens verified locally, opaque tokens and session cookies through the
resolver) is served by a threaded Werkzeug server; client threads send a shuffled mix of warm and freshly minted
JWTs, resolver sessions (bearer and cookie), expired and tampered tokens and anonymous requests. Meanwhile the
signing key rotates and the resolver fails for a while. Every answer must be the right user or the right error:
no wrong identity, no 500, and a 503 only for resolver requests that overlapped the outage.

Counts are bounded (``AUTHGEAR_LOAD_THREADS`` x ``AUTHGEAR_LOAD_REQUESTS``, default 32 x 40) so the suite stays
fast; raise them to soak the library (e.g. 32 x 2000, with ``--timeout=0``).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from flask_authgear.core.verifier import Verifier
from flask_authgear.testing.server import AuthgearTestServer, TestSession
from tests.support.app_server import AppServer
from tests.support.apps import me_app

THREADS = int(os.environ.get("AUTHGEAR_LOAD_THREADS", "32"))
PER_THREAD = int(os.environ.get("AUTHGEAR_LOAD_REQUESTS", "40"))
USERS = [f"load-user-{i}" for i in range(24)]
HTTP_TIMEOUT = 2.0
#: Bound for joining the client threads: a guard against a hang, far above what the run needs.
JOIN_BOUND = 100.0 + THREADS * PER_THREAD / 50

KINDS = (
    ("warm-jwt", 30),
    ("cold-jwt", 12),
    ("warm-session", 18),
    ("cold-session", 5),
    ("cookie-session", 10),
    ("expired-jwt", 8),
    ("tampered-jwt", 8),
    ("foreign-jwt", 4),
    ("anonymous", 5),
)
RESOLVER_KINDS = frozenset({"warm-session", "cold-session", "cookie-session"})


@dataclass
class Outcome:
    kind: str
    expected_sub: str | None
    status: int
    sub: str | None
    started: float
    ended: float


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    outage: tuple[float, float] | None = None
    rotated_at: float | None = None

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            self.done += 1


def build_app(server: AuthgearTestServer) -> Flask:
    return me_app(
        server,
        "load",
        mode="auto",
        http_timeout=HTTP_TIMEOUT,
        jwks_refetch_cooldown=0,  # the rotation happens seconds after the first fetch
        resolver_cache_ttl=30,
        token_cache_size=200,
        resolver_local_cache_size=200,
    )


@pytest.fixture(scope="module")
def authgear() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def app(authgear: AuthgearTestServer) -> Flask:
    return build_app(authgear)


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    # HTTP/1.1 with keep-alive: each client thread reuses one connection, as a real client would.
    with AppServer(app, keep_alive=True) as http:
        yield http.url


def app_verifier(app: Flask) -> Verifier:
    with app.app_context():
        verifier: Verifier = app.extensions["authgear"].verifier
    return verifier


def tamper(token: str, other: str) -> str:
    """Someone else's claims under this token's signature."""
    head, _, sig = token.split(".")
    return f"{head}.{other.split('.')[1]}.{sig}"


@pytest.mark.slow
def test_load_right_user_or_right_error(authgear: AuthgearTestServer, app: Flask, base_url: str) -> None:
    warm_tokens = {u: authgear.issue_token(u) for u in USERS}
    sessions: dict[str, TestSession] = {u: authgear.create_session(u) for u in USERS}
    expired = {u: authgear.issue_token(u, expires_in=-3600) for u in USERS}
    foreign_key = RSAKey.generate_key(2048, parameters={"kid": authgear.signing_key.kid})
    foreign = [_foreign_token(authgear, u, foreign_key) for u in USERS[:4]]
    total = THREADS * PER_THREAD
    run = Run()
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]

    def request_once(http: requests.Session, rng: random.Random) -> Outcome:
        kind = rng.choices(names, weights)[0]
        user = rng.choice(USERS)
        headers: dict[str, str] = {}
        expected: str | None = user
        if kind == "warm-jwt":
            headers["Authorization"] = f"Bearer {warm_tokens[user]}"
        elif kind == "cold-jwt":
            headers["Authorization"] = f"Bearer {authgear.issue_token(user)}"
        elif kind == "warm-session":
            headers["Authorization"] = sessions[user].authorization
        elif kind == "cold-session":
            headers["Authorization"] = authgear.create_session(user).authorization
        elif kind == "cookie-session":
            headers["Cookie"] = sessions[user].cookie
        elif kind == "expired-jwt":
            headers["Authorization"] = f"Bearer {expired[user]}"
            expected = None
        elif kind == "tampered-jwt":
            other = rng.choice([u for u in USERS if u != user])
            headers["Authorization"] = f"Bearer {tamper(warm_tokens[other], warm_tokens[user])}"
            expected = None
        elif kind == "foreign-jwt":
            headers["Authorization"] = f"Bearer {rng.choice(foreign)}"
            expected = None
        else:
            expected = None
        started = time.monotonic()
        try:
            response = http.get(f"{base_url}/me", headers=headers, timeout=10)
        except requests.RequestException:  # recorded as status 0, which no assertion accepts
            return Outcome(kind, expected, 0, None, started, time.monotonic())
        ended = time.monotonic()
        sub = response.json().get("sub") if response.status_code == 200 else None
        return Outcome(kind, expected, response.status_code, sub, started, ended)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as http:
            for _ in range(PER_THREAD):
                run.record(request_once(http, rng))

    def conductor() -> None:
        """Rotate the signing key at a third of the run; fail the resolver from half to seven tenths."""
        steps = [(total // 3, "rotate"), (total // 2, "fail"), (total * 7 // 10, "heal")]
        for threshold, action in steps:
            while run.done < threshold and any(t.is_alive() for t in clients):
                time.sleep(0.005)
            now = time.monotonic()
            if action == "rotate":
                authgear.rotate_keys(keep_old=True)
                run.rotated_at = now
            elif action == "fail":
                authgear.fail("resolver", "500")
                run.outage = (now, now)
            else:
                authgear.heal("resolver")
                assert run.outage is not None
                run.outage = (run.outage[0], time.monotonic())

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(THREADS)]
    control = threading.Thread(target=conductor, daemon=True)
    for thread in clients:
        thread.start()
    control.start()
    for thread in clients:
        thread.join(JOIN_BOUND)
    control.join(JOIN_BOUND)
    assert not any(t.is_alive() for t in (*clients, control)), "the load run hung"

    outcomes = run.outcomes
    assert len(outcomes) == total
    statuses = Counter(o.status for o in outcomes)
    wrong_identity = [o for o in outcomes if o.status == 200 and o.sub != o.expected_sub]
    accepted_bad = [o for o in outcomes if o.expected_sub is None and o.status == 200]
    server_errors = [o for o in outcomes if o.status >= 500 and o.status != 503]
    outage = run.outage
    assert outage is not None and run.rotated_at is not None

    def overlaps_outage(o: Outcome) -> bool:
        # A request may wait for a resolver call another request started before the heal (concurrent misses
        # share one call), so the outage reaches one call deadline past the heal.
        return o.started <= outage[1] + HTTP_TIMEOUT and o.ended >= outage[0]

    bad_503 = [o for o in outcomes if o.status == 503 and not (o.kind in RESOLVER_KINDS and overlaps_outage(o))]
    refused_good = [o for o in outcomes if o.expected_sub is not None and o.status not in (200, 503)]
    refused_bad_wrongly = [o for o in outcomes if o.expected_sub is None and o.status != 401]

    assert not wrong_identity, wrong_identity[:5]
    assert not accepted_bad, accepted_bad[:5]
    assert not server_errors, statuses
    assert statuses[0] == 0, "requests failed at the transport level"
    assert not bad_503, bad_503[:5]
    assert not refused_good, refused_good[:5]
    assert not refused_bad_wrongly, refused_bad_wrongly[:5]
    # The run exercised what it claims to: tokens of the new key, resolver answers, cached answers in the outage.
    kinds = Counter(o.kind for o in outcomes if o.status == 200)
    assert kinds["warm-jwt"] and kinds["cold-jwt"] and kinds["warm-session"] and kinds["cookie-session"]
    assert any(o.kind == "cold-jwt" and o.started > run.rotated_at and o.status == 200 for o in outcomes)
    assert any(o.kind in RESOLVER_KINDS and overlaps_outage(o) for o in outcomes)
    print(f"load: {total} requests, statuses {dict(statuses)}, 200s by kind {dict(kinds)}")

    verifier = app_verifier(app)
    health = verifier.health()
    assert len(verifier.jwt.cache) <= verifier.settings.token_cache_size
    assert health["resolver"]["local_entries"] <= verifier.settings.resolver_local_cache_size


def _foreign_token(authgear: AuthgearTestServer, sub: str, key: RSAKey) -> str:
    """A token with our claims and a known kid, signed by a key that is not ours."""
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, authgear.claims_for(sub), key)
