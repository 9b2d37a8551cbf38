"""The verified-token cache of JWT mode: hits skip the signature check, and nothing else changes.

A token is answered from the cache only by its exact text, only before its ``exp`` (leeway included) and only
while the key that verified it is still the same key in the JWKS. Failures are never cached, the LRU bound
holds under any number of distinct tokens, and concurrent users never see each other's identity.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from flask_authgear import InvalidTokenError, Settings
from flask_authgear.core.jwks import PublicKey, _parse_jwk
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.core.lru import LRU
from flask_authgear.core.refusals import TokenError
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.user import AuthgearUser
from tests.support.clock import Clock
from tests.support.jwt import jwt_verifier, sign


@pytest.fixture(scope="module")
def server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as running:
        yield running


class StaticKeys:
    """A key set that never fetches: the unit tests below decide which key object each kid maps to."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys: dict[str, PublicKey] = {}
        for key in keys:
            self.publish(key)

    def publish(self, key: RSAKey) -> PublicKey:
        public = _parse_jwk(key.as_dict(private=False), frozenset({"RS256"}))
        assert public is not None
        self.keys[public.kid] = public
        return public

    def get(self, kid: str) -> PublicKey | None:
        return self.keys.get(kid)

    def current(self, kid: str) -> PublicKey | None:
        return self.keys.get(kid)

    def still_current(self, key: PublicKey) -> bool:
        return self.keys.get(key.kid) is key


ISSUER = "https://myapp.authgear.cloud"


def claims(sub: str = "user-1", *, now: float, expires_in: float = 600, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": [ISSUER],
        "sub": sub,
        "iat": int(now),
        "exp": int(now + expires_in),
        "auth_time": int(now),
        "https://authgear.com/claims/user/roles": ["reader"],
    }
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1"})


def unit_verifier(keys: StaticKeys, clock: Clock, **overrides: Any) -> JWTVerifier:
    settings = Settings(endpoint=ISSUER, **overrides)
    return JWTVerifier(settings, keys, clock=clock)  # type: ignore[arg-type]


def assert_refused_and_dropped(verifier: JWTVerifier, token: str, reason: str) -> None:
    """A cached token is now refused for ``reason``: not answered from the cache, and its entry is gone."""
    hits = verifier.cache_hits
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    assert caught.value.reason == reason
    assert verifier.cache_hits == hits
    assert verifier.cache.get(token) is None


# -- hits and misses -----------------------------------------------------------------------------------------


def test_repeated_token_is_a_hit_that_returns_the_same_user(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    token = server.issue_token("alice", roles=["admin"])

    first = verifier.verify(token)
    assert (verifier.cache_hits, verifier.cache_misses) == (0, 1)
    second = verifier.verify(token)
    assert (verifier.cache_hits, verifier.cache_misses) == (1, 1)
    assert second is first
    assert second.id == "alice" and second.roles == frozenset({"admin"})


def test_a_hit_does_not_check_the_signature_again(signing_key: RSAKey) -> None:
    clock = Clock(time.time())
    verifier = unit_verifier(StaticKeys(signing_key), clock)
    token = sign(claims(now=clock()), signing_key)
    verifier.verify(token)
    check = verifier.jws.check_signature
    calls = []

    def counting(*args: Any) -> bool:
        calls.append(args)
        return check(*args)

    verifier.jws.check_signature = counting  # type: ignore[method-assign]
    for _ in range(5):
        verifier.verify(token)
    assert calls == []
    verifier.verify(sign(claims("bob", now=clock()), signing_key))
    assert len(calls) == 1


def test_each_distinct_token_is_a_miss(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    tokens = [server.issue_token("alice") for _ in range(3)]  # same user, distinct jti: distinct texts
    users = [verifier.verify(token) for token in tokens]
    assert (verifier.cache_hits, verifier.cache_misses) == (0, 3)
    assert all(user.id == "alice" for user in users)


def test_cache_size_zero_disables_the_cache(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server, token_cache_size=0)
    token = server.issue_token("alice")
    assert verifier.verify(token).id == verifier.verify(token).id == "alice"
    assert len(verifier.cache) == 0
    assert (verifier.cache_hits, verifier.cache_misses) == (0, 2)  # every verification misses


def test_health_reports_the_counters(server: AuthgearTestServer) -> None:
    from flask_authgear import Verifier

    verifier = Verifier(Settings(**server.settings()))
    token = server.issue_token("alice")
    verifier.verify_token(token)
    verifier.verify_token(token)
    assert verifier.health()["token_cache"] == {"hits": 1, "misses": 1}


# -- failures are never cached -------------------------------------------------------------------------------


def test_a_bad_signature_is_refused_every_time_and_never_cached(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    head, payload, signature = server.issue_token("alice").split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for _ in range(3):
        with pytest.raises(InvalidTokenError) as caught:
            verifier.verify(forged)
        assert caught.value.reason == "signature"  # type: ignore[attr-defined]
    assert len(verifier.cache) == 0
    assert (verifier.cache_hits, verifier.cache_misses) == (0, 3)


def test_an_expired_token_is_never_cached(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server, leeway=0)
    token = server.issue_token("alice", expires_in=-5)
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)
    assert verifier.cache.get(token) is None


def test_a_valid_token_after_a_forged_twin_is_verified_on_its_own(server: AuthgearTestServer) -> None:
    """The forged twin's failure leaves nothing behind that could answer for the real token, or vice versa."""
    verifier, _ = jwt_verifier(server)
    token = server.issue_token("alice")
    head, payload, _ = token.split(".")
    other_signature = server.issue_token("mallory").split(".")[2]
    with pytest.raises(InvalidTokenError):
        verifier.verify(f"{head}.{payload}.{other_signature}")
    assert verifier.verify(token).id == "alice"
    with pytest.raises(InvalidTokenError):
        verifier.verify(f"{head}.{payload}.{other_signature}")


# -- expiry --------------------------------------------------------------------------------------------------


def test_a_cached_token_expires_at_exp_plus_leeway(signing_key: RSAKey) -> None:
    clock = Clock(1_800_000_000.0)
    verifier = unit_verifier(StaticKeys(signing_key), clock, leeway=30)
    token = sign(claims(now=clock(), expires_in=100), signing_key)

    verifier.verify(token)
    clock.advance(129)  # exp + leeway - 1
    verifier.verify(token)
    assert verifier.cache_hits == 1

    clock.advance(1)  # exactly exp + leeway: expired ("on or after")
    assert_refused_and_dropped(verifier, token, "expired")


def test_a_long_lived_cache_entry_never_outlives_the_token(signing_key: RSAKey) -> None:
    clock = Clock(1_800_000_000.0)
    verifier = unit_verifier(StaticKeys(signing_key), clock, leeway=0)
    token = sign(claims(now=clock(), expires_in=60), signing_key)
    verifier.verify(token)
    for _ in range(59):
        clock.advance(1)
        verifier.verify(token)
    clock.advance(1)
    with pytest.raises(TokenError):
        verifier.verify(token)


# -- the signing key must still be published -----------------------------------------------------------------


def test_a_key_removed_from_the_jwks_invalidates_its_cached_tokens(server: AuthgearTestServer) -> None:
    clock = Clock()
    verifier, jwks = jwt_verifier(server, clock, jwks_refetch_cooldown=0)
    old_key = server.signing_key
    token = server.issue_token("alice")
    verifier.verify(token)
    verifier.verify(token)
    assert verifier.cache_hits == 1

    server.rotate_keys(keep_old=True)
    clock.advance(verifier.settings.jwks_cache_ttl)  # the JWKS refreshes; the old key is still published
    fetches = jwks.stats.fetches
    assert verifier.verify(token).id == "alice"
    assert jwks.stats.fetches == fetches + 1
    assert verifier.cache_hits == 2  # an unchanged key keeps its identity across a refresh

    server.remove_key(old_key.kid)
    clock.advance(verifier.settings.jwks_cache_ttl)
    assert_refused_and_dropped(verifier, token, "unknown_kid")


def test_a_hit_does_not_wait_for_the_jwks_ttl_to_notice_nothing(server: AuthgearTestServer) -> None:
    """Hits do not fetch: within the JWKS TTL a cached token costs no request to Authgear."""
    clock = Clock()
    verifier, jwks = jwt_verifier(server, clock)
    token = server.issue_token("alice")
    verifier.verify(token)
    fetches = jwks.stats.fetches
    for _ in range(50):
        verifier.verify(token)
    assert jwks.stats.fetches == fetches
    assert verifier.cache_hits == 50


def test_a_different_key_object_under_the_same_kid_invalidates(signing_key: RSAKey) -> None:
    clock = Clock(time.time())
    keys = StaticKeys(signing_key)
    verifier = unit_verifier(keys, clock)
    token = sign(claims(now=clock()), signing_key)
    verifier.verify(token)

    # The same kid now names another key (a re-keyed kid): the cached answer came from the old one.
    impostor = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    keys.publish(impostor)
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "signature"
    assert verifier.cache_hits == 0


def test_a_remembered_header_still_needs_its_key(signing_key: RSAKey) -> None:
    """The header segment is remembered after a valid signature; the key behind its kid is still looked up."""
    clock = Clock(time.time())
    keys = StaticKeys(signing_key)
    verifier = unit_verifier(keys, clock)
    verifier.verify(sign(claims(now=clock()), signing_key))
    del keys.keys[signing_key.kid]
    with pytest.raises(TokenError) as caught:
        verifier.verify(sign(claims("bob", now=clock()), signing_key))
    assert caught.value.reason == "unknown_kid"


def test_only_headers_with_a_valid_signature_are_remembered(signing_key: RSAKey) -> None:
    clock = Clock(time.time())
    verifier = unit_verifier(StaticKeys(signing_key), clock)
    other = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    for i in range(5):
        with pytest.raises(TokenError):
            verifier.verify(sign(claims(now=clock()), other, header={"cty": f"junk-{i}"}))
    assert verifier.jws._headers == {}
    verifier.verify(sign(claims(now=clock()), signing_key))
    assert len(verifier.jws._headers) == 1


# -- LRU bound -----------------------------------------------------------------------------------------------


def test_lru_keeps_the_recently_used_token(signing_key: RSAKey) -> None:
    clock = Clock(time.time())
    verifier = unit_verifier(StaticKeys(signing_key), clock, token_cache_size=2)
    a, b, c = (sign(claims(sub, now=clock()), signing_key) for sub in "abc")
    verifier.verify(a)
    verifier.verify(b)
    verifier.verify(a)  # a is now the most recently used
    verifier.verify(c)  # evicts b
    cache = verifier.cache
    assert cache.get(a) is not None and cache.get(c) is not None and cache.get(b) is None
    hits = verifier.cache_hits
    verifier.verify(a)
    assert verifier.cache_hits == hits + 1


def test_the_bound_holds_for_real_tokens(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server, token_cache_size=10)
    tokens = [server.issue_token(f"user-{i}") for i in range(40)]
    for token in tokens:
        verifier.verify(token)
        assert len(verifier.cache) <= 10
    assert len(verifier.cache) == 10
    assert all(verifier.cache.get(token) is not None for token in tokens[-10:])


def _entry(i: int, key: PublicKey) -> tuple[str, tuple[AuthgearUser, float, PublicKey]]:
    """An entry of realistic size: an Authgear-sized token text and a user of its own."""
    token = f"eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS0xIiwidHlwIjoiYXQrand0In0.{i:0>600}.{'s' * 342}"
    return token, (AuthgearUser(id=f"user-{i}", roles=frozenset({"reader"})), 1e12, key)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc")
def test_memory_stays_at_the_bound_under_100000_distinct_tokens(signing_key: RSAKey) -> None:
    key = StaticKeys(signing_key).keys[signing_key.kid]
    bound = 1_000
    cache = LRU(bound)
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(bound):
            token, entry = _entry(i, key)
            cache[token] = entry
        at_bound = tracemalloc.get_traced_memory()[0]  # what the cache holds when full, in bytes
    finally:
        tracemalloc.stop()
    assert 1_000 * bound < at_bound < 20_000 * bound  # about 1.5 kB an entry here

    rss_before = _rss_bytes()
    for i in range(bound, 100_000):
        token, entry = _entry(i, key)
        cache[token] = entry
        if i % 9_973 == 0:
            assert len(cache) == bound
    growth = _rss_bytes() - rss_before
    assert len(cache) == bound
    assert all(cache.get(_entry(i, key)[0]) is not None for i in range(99_000, 100_000))
    # Unbounded, 99,000 more entries would add about 99 x at_bound; bounded, the process does not grow.
    assert growth < max(8 * 1024 * 1024, 4 * at_bound)


# -- threads -------------------------------------------------------------------------------------------------


def test_interleaved_users_never_get_each_others_identity(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server, token_cache_size=8)  # tiny: constant eviction under contention
    tokens = {f"user-{i}": [server.issue_token(f"user-{i}", roles=[f"role-{i}"]) for _ in range(3)] for i in range(12)}
    pairs = [(sub, token) for sub, ts in tokens.items() for token in ts]
    errors: list[str] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        start.wait()
        for _ in range(300):
            sub, token = rnd.choice(pairs)
            user = verifier.verify(token)
            if user.id != sub or user.roles != frozenset({f"role-{sub[5:]}"}):
                errors.append(f"{sub} got {user.id}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(verifier.cache) <= 8
    assert verifier.cache_hits > 0 and verifier.cache_misses > 0


def test_concurrent_puts_and_gets_keep_the_bound() -> None:
    cache = LRU(16)
    user = AuthgearUser(id="x")
    key = PublicKey(kid="k", key=None, algorithms=frozenset())  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(5_000):
                token = f"t{rnd.randrange(64)}"
                entry = cache.get(token)
                if entry is None:
                    cache[token] = (user, 1.0, key)
                elif rnd.random() < 0.3:
                    cache.pop(token)
                assert len(cache) <= 16
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(cache) <= 16


def test_cached_users_cannot_be_altered_by_one_request_for_the_next(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    token = server.issue_token("alice", roles=["reader"])
    user = verifier.verify(token)
    assert isinstance(user.claims, MappingProxyType)
    with pytest.raises(TypeError):
        user.claims["sub"] = "mallory"  # type: ignore[index]
    with pytest.raises(AttributeError):
        user.claims["aud"].append("x")
    assert verifier.verify(token).claims["sub"] == "alice"
