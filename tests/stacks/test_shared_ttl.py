"""Processes sharing a sqlite file or a redis-server, each with its own ``resolver_cache_ttl``: every one bounds
its reuse of a shared answer by its own TTL, measured from when the resolver answered, on injected clocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from flask_authgear import InvalidTokenError, Verifier
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import bearer_request
from tests.support.clock import clocked, wall_clock
from tests.support.redis_server import IGNORE_SETEX_DEPRECATION, RedisServer

SECRET = "shared-ttl-secret-0123456789abcdef"
MakeVerifier = Callable[..., Verifier]
pytestmark = [IGNORE_SETEX_DEPRECATION, pytest.mark.usefixtures("healed_server")]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A cache spec for one shared store, empty at the start of the test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'resolver.sqlite'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as connection:
        connection.flushall()
    return server.url


def test_each_process_reuses_a_shared_answer_only_within_its_own_ttl(
    server: AuthgearTestServer, make_verifier: MakeVerifier, store: str
) -> None:
    clock = wall_clock()
    lenient = clocked(make_verifier(cache=store, cache_secret=SECRET, resolver_cache_ttl=3600), clock)
    strict = clocked(make_verifier(cache=store, cache_secret=SECRET, resolver_cache_ttl=1), clock)
    session = server.create_session("rolling")
    request = bearer_request(session.token)
    assert lenient.authenticate(request).id == "rolling"  # written with an hour to live
    clock.advance(0.5)
    assert strict.authenticate(request).id == "rolling"  # half a second old: within the strict TTL too
    assert server.hits("resolver") == 1
    assert strict.health()["resolver"]["shared_hits"] == 1
    server.revoke(session)
    clock.advance(0.6)  # 1.1 s after the resolver answered: too old for the strict process
    with pytest.raises(InvalidTokenError):
        strict.authenticate(request)
    assert server.hits("resolver") == 2
    assert strict.health()["resolver"]["rejected_entries"] == 0  # an old entry is a miss, not an attack


def test_a_shared_answer_dated_in_the_future_is_not_believed(
    server: AuthgearTestServer, make_verifier: MakeVerifier, store: str
) -> None:
    ahead = clocked(make_verifier(cache=store, cache_secret=SECRET), wall_clock(30))
    reader = clocked(make_verifier(cache=store, cache_secret=SECRET), wall_clock())
    session = server.create_session("skewed")
    request = bearer_request(session.token)
    assert ahead.authenticate(request).id == "skewed"
    assert reader.authenticate(request).id == "skewed"
    assert server.hits("resolver") == 2  # the reader asked the resolver itself
    health = reader.health()["resolver"]
    assert (health["shared_hits"], health["rejected_entries"]) == (0, 0)
