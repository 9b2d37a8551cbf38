"""Caches stay within their configured bounds under a flood of distinct credentials, and so does memory.

An attacker controls how many distinct tokens and cookies reach us. Each cache must stop at its size, and the
memory the process holds after a long flood must be what it held after a short one: measured with
``tracemalloc`` (allocations still alive), never with a clock.
"""

from __future__ import annotations

import gc
import secrets
import threading
import tracemalloc
from collections.abc import Callable

import pytest
from joserfc.jwk import ECKey

from flask_authgear.config import Settings
from flask_authgear.core.refusals import TokenError
from flask_authgear.core.verifier import Verifier
from flask_authgear.errors import InvalidTokenError
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import bearer_request

EC_KID = "memory-ec-key"


@pytest.fixture(scope="module")
def ec_key(server: AuthgearTestServer) -> ECKey:
    """An ES256 key in the JWKS: signing with it is cheap, so a flood of distinct valid tokens costs little."""
    key = ECKey.generate_key("P-256", parameters={"kid": EC_KID, "use": "sig", "alg": "ES256"})
    server.publish_jwks([key.as_dict(private=False)])
    return key


def live_growth(first: Callable[[], None], second: Callable[[], None]) -> tuple[int, int]:
    """Bytes still allocated after ``first`` and the extra bytes still allocated after ``second``.

    Garbage is collected before each reading: refused requests leave exception cycles that are garbage, not
    state, and only state counts.
    """
    tracemalloc.start()
    try:
        first()
        gc.collect()
        after_first, _ = tracemalloc.get_traced_memory()
        second()
        gc.collect()
        after_second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after_first, after_second - after_first


def test_verified_token_cache_is_bounded(server: AuthgearTestServer, ec_key: ECKey) -> None:
    size = 100
    verifier = Verifier(Settings(**server.settings(algorithms=["RS256", "ES256"], token_cache_size=size)))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": EC_KID}
    tokens = [server.issue_token(f"flood-{i}", key=ec_key, header=header) for i in range(1500)]  # type: ignore[arg-type]

    def verify(batch: list[str]) -> Callable[[], None]:
        def run() -> None:
            for token in batch:
                assert verifier.authenticate(bearer_request(token)).id.startswith("flood-")

        return run

    verify(tokens[:10])()  # keys fetched, imports done: not part of the measure
    held, growth = live_growth(verify(tokens[10:400]), verify(tokens[400:]))
    assert len(verifier.jwt.cache) == size
    # 1,100 more verified tokens, yet the live memory did not grow with them: a full cache holds ~100 entries
    # (several hundred KB); an unbounded one would have added megabytes.
    assert growth < 100 * 1024, f"live memory grew by {growth} bytes after the cache was full ({held} held)"


def test_refused_tokens_leave_nothing_behind(server: AuthgearTestServer, ec_key: ECKey) -> None:
    verifier = Verifier(Settings(**server.settings(algorithms=["RS256", "ES256"])))
    good = server.issue_token("someone")
    verifier.authenticate(bearer_request(good))
    head, payload, _ = good.split(".")
    forged = [f"{head}.{payload}.{secrets.token_urlsafe(256)[:342]}" for _ in range(2000)]

    def refuse(batch: list[str]) -> Callable[[], None]:
        def run() -> None:
            for token in batch:
                with pytest.raises(InvalidTokenError):
                    verifier.authenticate(bearer_request(token))

        return run

    _, growth = live_growth(refuse(forged[:200]), refuse(forged[200:]))
    assert len(verifier.jwt.cache) == 1
    assert growth < 64 * 1024


def test_unknown_kid_flood_is_bounded(server: AuthgearTestServer) -> None:
    """Random kids cost at most one JWKS fetch per cooldown and leave no trace."""
    verifier = Verifier(Settings(**server.settings(jwks_refetch_cooldown=30)))
    verifier.authenticate(bearer_request(server.issue_token("warm")))
    before = server.hits("jwks")
    token = server.issue_token("x")
    for _ in range(300):
        kid_header = server.issue_token("x", header={"kid": secrets.token_hex(16)})
        with pytest.raises(TokenError):
            verifier.authenticate(bearer_request(kid_header))
    assert server.hits("jwks") - before <= 1
    assert len(verifier.jwks.keys) == len(server.keys)
    assert verifier.authenticate(bearer_request(token)).id == "x"


@pytest.mark.slow
def test_resolver_caches_are_bounded(server: AuthgearTestServer) -> None:
    """Distinct opaque tokens each cost a resolver call; the in-process cache stops at its size."""
    local_size = 50
    verifier = Verifier(
        Settings(**server.settings(mode="resolver", resolver_local_cache_size=local_size, resolver_negative_ttl=30))
    )
    assert verifier.resolver is not None
    sessions = [server.create_session(f"flood-{i}") for i in range(100)]
    wrong: list[str] = []

    def flood(worker: int) -> None:
        for i in range(worker, local_size + 600, 4):
            if i % 4 == 0:  # a real user now and then: positive answers are cached too
                session = sessions[i % len(sessions)]
                user = verifier.authenticate(bearer_request(session.token))
                if user.id != session.user_id:
                    wrong.append(user.id)
            else:
                try:
                    verifier.authenticate(bearer_request(secrets.token_urlsafe(24)))
                    wrong.append("an unknown token was accepted")
                except InvalidTokenError:
                    pass

    try:
        threads = [threading.Thread(target=flood, args=(w,), daemon=True) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(t.is_alive() for t in threads)
        assert not wrong
        calls = verifier.resolver.stats.resolver_calls
        assert calls > local_size  # the flood really went past the bound
        assert len(verifier.resolver.local) <= local_size
    finally:
        verifier.close()
