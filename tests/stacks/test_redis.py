"""The Redis-shared resolver cache against a real redis-server: nothing raw stored, entries that expire,
one cache shared by separate app processes, and Redis going away."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from flask_authgear import InvalidTokenError, Settings, Verifier
from flask_authgear.core import RequestData
from flask_authgear.core.cache import _NAMESPACE
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import authenticate_secrets, bearer, bearer_request
from tests.support.examples import ROOT
from tests.support.redis_server import IGNORE_SETEX_DEPRECATION, RedisServer, new_redis

SECRET = "redis-shared-secret-0123456789abcdef"
APP_PROCESS = ROOT / "tests" / "support" / "app_process.py"
MakeVerifier = Callable[..., Verifier]
pytestmark = [IGNORE_SETEX_DEPRECATION, pytest.mark.usefixtures("healed_server")]


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture
def verifier_defaults(redis_server: RedisServer) -> dict[str, Any]:
    """``make_verifier`` (tests/conftest.py) builds resolver-mode verifiers sharing this redis-server."""
    return {"mode": "resolver", "cache": redis_server.url, "cache_secret": SECRET}


def test_redis_holds_no_raw_credential_and_every_entry_expires(
    server: AuthgearTestServer, make_verifier: MakeVerifier, client: redis.Redis
) -> None:
    verifier = make_verifier(resolver_cache_ttl=30, resolver_negative_ttl=5)
    raw = authenticate_secrets(server, verifier)
    keys = list(client.scan_iter("*"))
    response_keys = [k for k in keys if k.startswith(f"{_NAMESPACE}:".encode())]
    assert len(response_keys) == 7
    blob = b"".join(keys) + b"".join(client.dump(k) or b"" for k in keys)
    values = b"".join(client.get(k) or b"" for k in response_keys)
    assert b"user-0" in values
    for secret in raw:
        assert secret.encode() not in blob
    for name in (b"uthorization", b"ookie", b"Bearer"):
        assert name not in blob
    ttls = sorted(client.ttl(k) for k in response_keys)
    assert all(ttl > 0 for ttl in ttls)  # Redis deletes every entry itself
    assert ttls[0] <= 7 and ttls[-1] <= 32


def _run_app(config: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(APP_PROCESS), json.dumps(config), json.dumps(requests)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_separate_app_processes_share_one_redis_cache(
    server: AuthgearTestServer, redis_server: RedisServer, client: redis.Redis
) -> None:
    session = server.create_session("shared-user", roles=["admin"])
    config = server.flask_config(mode="resolver", cache=redis_server.url, cache_secret=SECRET)
    requests = [
        {"path": "/me", "headers": bearer(session.token)},
        {"path": "/me", "headers": {"Cookie": session.cookie}},
        {"path": "/admin", "headers": bearer(session.token)},
    ]
    first = _run_app(config, requests)
    assert [a["status"] for a in first["answers"]] == [200, 200, 200]
    assert first["answers"][0]["body"]["user"]["id"] == "shared-user"
    assert server.hits("resolver") == 2  # one call per credential
    second = _run_app(config, requests)
    assert [a["status"] for a in second["answers"]] == [200, 200, 200]
    assert second["answers"][1]["body"]["user"]["id"] == "shared-user"
    assert server.hits("resolver") == 2  # the second process asked Redis, not the resolver
    assert second["health"]["resolver"]["shared_hits"] == 2
    assert second["health"]["resolver"]["resolver_calls"] == 0
    other_secret = dict(config, AUTHGEAR_CACHE_SECRET="a-different-secret-0123456789")
    third = _run_app(other_secret, requests[:1])
    assert third["answers"][0]["status"] == 200
    assert server.hits("resolver") == 3  # a process with another secret cannot read those entries


def test_interleaved_users_through_redis(server: AuthgearTestServer, make_verifier: MakeVerifier, client: Any) -> None:
    sessions = [server.create_session(f"user-{i % 8}") for i in range(24)]
    verifiers = [make_verifier(resolver_local_cache_size=0), make_verifier(resolver_local_cache_size=100)]
    rng = random.Random(11)
    jobs = [(rng.choice(verifiers), rng.choice(sessions), rng.random() < 0.5) for _ in range(300)]

    def run(job: tuple[Verifier, Any, bool]) -> bool:
        verifier, session, cookie = job
        request = RequestData(cookie=session.cookie) if cookie else bearer_request(session.token)
        return verifier.authenticate(request).id == session.user_id

    # Each credential is first asked about once, through either verifier; from then on both answer from Redis,
    # however the threads interleave.
    first = [(verifiers[i % 2], session, cookie) for i, session in enumerate(sessions) for cookie in (False, True)]
    assert all(map(run, first))
    assert server.hits("resolver") == 48
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(run, jobs))
    assert server.hits("resolver") == 48
    assert all(v.resolver is not None and v.resolver.stats.backend_errors == 0 for v in verifiers)


def test_redis_going_away_falls_back_to_the_resolver_never_to_an_old_answer(
    server: AuthgearTestServer,
) -> None:
    owned = new_redis()
    verifier = Verifier(
        Settings(
            **server.settings(
                mode="resolver", cache=owned.url, cache_secret=SECRET, resolver_local_cache_size=0, http_timeout=1.0
            )
        )
    )
    try:
        session = server.create_session("rita")
        request = bearer_request(session.token)
        assert verifier.authenticate(request).id == "rita"
        assert verifier.authenticate(request).id == "rita"
        assert server.hits("resolver") == 1
        owned.stop()
        assert verifier.authenticate(request).id == "rita"  # straight to the resolver
        server.revoke(session)
        with pytest.raises(InvalidTokenError):
            verifier.authenticate(request)
        other = server.create_session("sam")
        assert verifier.authenticate(RequestData(cookie=other.cookie)).id == "sam"
        health = verifier.health()["resolver"]
        assert health["backend_errors"] >= 1
        assert server.hits("resolver") == 4
    finally:
        verifier.close()
        owned.close()


def test_an_entry_copied_to_another_key_in_redis_is_refused(
    server: AuthgearTestServer, make_verifier: MakeVerifier, client: redis.Redis
) -> None:
    admin = server.create_session("root", roles=["admin"])
    mallory = server.create_session("mallory")
    verifier = make_verifier(resolver_local_cache_size=0)
    verifier.authenticate(bearer_request(admin.token))
    verifier.authenticate(bearer_request(mallory.token))
    assert verifier.resolver is not None
    keyer = verifier.resolver.shared.keyer
    admin_entry = client.get(f"{_NAMESPACE}:{keyer.key(admin.authorization, None)}")
    assert admin_entry is not None
    client.set(f"{_NAMESPACE}:{keyer.key(mallory.authorization, None)}", admin_entry, ex=60)
    user = verifier.authenticate(bearer_request(mallory.token))
    assert (user.id, user.roles) == ("mallory", frozenset())
    assert verifier.health()["resolver"]["rejected_entries"] == 1


@pytest.mark.parametrize("field", ["status_code", "headers", "expires"])
def test_a_malformed_redis_entry_is_replaced_and_redis_stays_in_use(
    server: AuthgearTestServer, make_verifier: MakeVerifier, client: redis.Redis, field: str
) -> None:
    # What a writer with another entry format could leave: valid JSON, one field of the wrong type.
    session, other = server.create_session("rita"), server.create_session("sam")
    verifier = make_verifier(resolver_local_cache_size=0)
    verifier.authenticate(bearer_request(session.token))
    assert verifier.resolver is not None
    name = f"{_NAMESPACE}:{verifier.resolver.shared.keyer.key(session.authorization, None)}"
    entry = json.loads(client.get(name) or b"{}")
    client.set(name, json.dumps({**entry, field: {"status_code": "OK", "headers": "x", "expires": "soon"}[field]}))
    hits = server.hits("resolver")
    for _ in range(2):
        assert verifier.authenticate(bearer_request(session.token)).id == "rita"
        assert verifier.authenticate(bearer_request(other.token)).id == "sam"
    assert server.hits("resolver") == hits + 2  # the damaged entry once, sam's first request once
    assert json.loads(client.get(name) or b"{}")["status_code"] == 200
    health = verifier.health()["resolver"]
    assert (health["malformed_entries"], health["backend_errors"], health["shared_hits"]) == (1, 0, 2)
