"""The signing keys, over real HTTP to the local server: discovery, caching, rotation, floods and outages.

The JWKS cache runs on an injected clock, so ages, TTLs and cooldowns are exact and nothing sleeps;
every claim about network use is checked by counting the requests the server answered.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from flask_authgear import InvalidTokenError, ProviderUnavailableError, Settings, Verifier
from flask_authgear.core.json import MAX_DEPTH
from flask_authgear.core.jwks import _FAILURE_BACKOFF, MAX_KEYS, JWKSCache, _parse_jwks
from flask_authgear.testing import AuthgearTestServer, new_signing_key
from tests.support.auth import bearer_request
from tests.support.clock import Clock
from tests.support.jwt import jwt_verifier, serve_json, sign
from tests.support.threads import together

TTL = 300.0
COOLDOWN = 30.0
MAX_STALE = 3600.0
ALL_ASYMMETRIC = frozenset({"RS256", "PS256", "ES256", "ES384", "EdDSA"})


pytestmark = pytest.mark.filterwarnings(
    # Weak keys are made on purpose here, to prove they are refused.
    "ignore:Key size should be:joserfc.errors.SecurityWarning",
    "ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning",
)


@pytest.fixture
def server(server: AuthgearTestServer) -> Iterator[AuthgearTestServer]:
    """conftest's module server, reset to a single signing key, no extra keys, no failures and zero counters."""
    server.heal()
    server.publish_jwks([])
    if len(server.keys) != 1:  # a rotation left several keys: start again from one new key
        server.rotate_keys(keep_old=False)
    server.reset_hits()
    yield server
    server.heal()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache_for(server: AuthgearTestServer, clock: Clock, **overrides: Any) -> JWKSCache:
    return JWKSCache(Settings(**server.settings(**overrides)), clock=clock)


def kid_of(server: AuthgearTestServer) -> str:
    kid = server.signing_key.kid
    assert kid is not None
    return kid


# -- discovery -------------------------------------------------------------------------------------------------


def test_discovery_is_fetched_once(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock)
    assert cache.get(kid_of(server)) is not None
    assert (server.hits("discovery"), server.hits("jwks")) == (1, 1)
    for _ in range(3):
        clock.advance(TTL)
        assert cache.get(kid_of(server)) is not None
    assert (server.hits("discovery"), server.hits("jwks")) == (1, 4)


def test_configured_jwks_uri_skips_discovery(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock, jwks_uri=f"{server.endpoint}/oauth2/jwks")
    assert cache.get(kid_of(server)) is not None
    assert (server.hits("discovery"), server.hits("jwks")) == (0, 1)


def test_discovery_issuer_mismatch_is_unavailable(server: AuthgearTestServer, clock: Clock) -> None:
    # A discovery document for another issuer means we are talking to the wrong server: trust none of its keys.
    cache = cache_for(server, clock, issuer="https://auth.example.com")
    with pytest.raises(ProviderUnavailableError):
        cache.get(kid_of(server))
    assert server.hits("jwks") == 0
    assert "issuer" in (cache.health()["last_error"] or "")


def test_discovery_issuer_mismatch_through_the_verifier(server: AuthgearTestServer) -> None:
    verifier = Verifier(Settings(**server.settings(issuer="https://auth.example.com")))
    token = server.issue_token(iss="https://auth.example.com")
    with pytest.raises(ProviderUnavailableError) as caught:
        verifier.authenticate(bearer_request(token))
    assert caught.value.status_code == 503


@pytest.mark.parametrize("mode", ["500", "html", "garbage", "empty", "redirect"])
def test_discovery_failure_is_unavailable_then_retried(server: AuthgearTestServer, clock: Clock, mode: str) -> None:
    cache = cache_for(server, clock)
    server.fail("discovery", mode)
    with pytest.raises(ProviderUnavailableError):
        cache.get(kid_of(server))
    # Within the backoff the failure is answered without another request.
    with pytest.raises(ProviderUnavailableError):
        cache.get(kid_of(server))
    assert server.hits("discovery") == 1
    server.heal()
    clock.advance(_FAILURE_BACKOFF)
    assert cache.get(kid_of(server)) is not None
    assert (server.hits("discovery"), server.hits("jwks")) == (2, 1)


def test_discovery_jwks_uri_must_be_acceptable(clock: Clock) -> None:
    # A misconfigured or hostile discovery document: plain http to a non-loopback host.
    with serve_json({}) as (origin, _):
        discovery = {"issuer": origin, "jwks_uri": "http://203.0.113.7/oauth2/jwks"}
        with serve_json({"/.well-known/openid-configuration": discovery}) as (endpoint, hits):
            discovery["issuer"] = endpoint
            cache = JWKSCache(Settings(endpoint=endpoint, http_timeout=2), clock=clock)
            with pytest.raises(ProviderUnavailableError):
                cache.get("any")
            error = cache.health()["last_error"] or ""
            assert "jwks_uri uses plain http on a non-loopback host" in error
            assert "allow_insecure_http" in error and "203.0.113.7" not in error
            assert hits == {"/.well-known/openid-configuration": 1}


def test_jwks_uri_from_discovery_is_used(clock: Clock) -> None:
    # Discovery may place the JWKS anywhere acceptable; the cache follows it, and fetches discovery once.
    key = new_signing_key()
    discovery: dict[str, Any] = {}
    with serve_json({"/.well-known/openid-configuration": discovery, "/keys": {"keys": [public(key)]}}) as (
        endpoint,
        hits,
    ):
        discovery.update(issuer=endpoint, jwks_uri=f"{endpoint}/keys")
        cache = JWKSCache(Settings(endpoint=endpoint, http_timeout=2), clock=clock)
        assert cache.get(key.kid or "") is not None
        clock.advance(TTL)
        assert cache.get(key.kid or "") is not None
        assert hits == {"/.well-known/openid-configuration": 1, "/keys": 2}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("document", ["discovery", "jwks"])
@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1], ids=["at-the-bound", "one-level-deeper"])
def test_documents_nested_deeper_than_the_bound_are_a_failed_fetch(clock: Clock, document: str, depth: int) -> None:
    key = new_signing_key()
    discovery: dict[str, Any] = {}
    jwks: dict[str, Any] = {"keys": [public(key)]}
    # The member sits inside the top-level object, which is the first level.
    (discovery if document == "discovery" else jwks)["x"] = _nested(depth - 1)
    with serve_json({"/.well-known/openid-configuration": discovery, "/keys": jwks}) as (endpoint, _):
        discovery.update(issuer=endpoint, jwks_uri=f"{endpoint}/keys")
        cache = JWKSCache(Settings(endpoint=endpoint, http_timeout=2), clock=clock)
        if depth <= MAX_DEPTH:
            assert cache.get(key.kid or "") is not None
            return
        with pytest.raises(ProviderUnavailableError):
            cache.get(key.kid or "")
        assert "did not answer a JSON object" in (cache.health()["last_error"] or "")


@pytest.mark.parametrize("document", ["discovery", "jwks"])
@pytest.mark.parametrize("answer", [[], "keys", None], ids=["array", "string", "null"])
def test_a_document_that_is_not_a_json_object_is_a_failed_fetch(clock: Clock, document: str, answer: Any) -> None:
    key = new_signing_key()
    documents: dict[str, Any] = {"/.well-known/openid-configuration": {}, "/keys": {"keys": [public(key)]}}
    with serve_json(documents) as (endpoint, _):
        documents["/.well-known/openid-configuration"] = {"issuer": endpoint, "jwks_uri": f"{endpoint}/keys"}
        documents["/.well-known/openid-configuration" if document == "discovery" else "/keys"] = answer
        cache = JWKSCache(Settings(endpoint=endpoint, http_timeout=2), clock=clock)
        with pytest.raises(ProviderUnavailableError):
            cache.get(key.kid or "")
        assert "did not answer a JSON object" in (cache.health()["last_error"] or "")


# -- TTL and rotation ------------------------------------------------------------------------------------------


def test_keys_are_cached_for_the_ttl(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock, jwks_cache_ttl=TTL)
    kid = kid_of(server)
    for _ in range(50):
        assert cache.get(kid) is not None
    clock.advance(TTL - 1)
    assert cache.get(kid) is not None
    assert server.hits("jwks") == 1
    clock.advance(1)
    assert cache.get(kid) is not None
    assert server.hits("jwks") == 2


def test_unchanged_keys_keep_their_identity_across_fetches(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock)
    old_kid = kid_of(server)
    first = cache.get(old_kid)
    clock.advance(TTL)
    assert cache.get(old_kid) is first
    assert server.hits("jwks") == 2
    new_key = server.rotate_keys()
    clock.advance(TTL)
    assert cache.get(new_key.kid or "") is not None
    assert cache.get(old_kid) is first  # the rotation kept the old key: still the same object


def test_key_rotation(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, cache = jwt_verifier(server, clock)
    old_kid = kid_of(server)
    old_token = server.issue_token("u-old")
    assert verifier.verify(old_token).id == "u-old"

    # Authgear publishes the new key first and keeps the old one: both verify, the new one after one refetch.
    new_key = server.rotate_keys()
    new_token = server.issue_token("u-new")
    assert verifier.verify(new_token).id == "u-new"
    assert server.hits("jwks") == 2
    assert verifier.verify(old_token).id == "u-old"

    # The old key is withdrawn: it keeps verifying until the next fetch, then stops, cached token or not.
    server.remove_key(old_kid)
    assert verifier.verify(old_token).id == "u-old"
    clock.advance(TTL)
    with pytest.raises(InvalidTokenError):
        verifier.verify(old_token)
    assert old_kid not in cache.keys
    assert new_key.kid in cache.keys
    assert verifier.verify(new_token).id == "u-new"
    assert verifier.verify(server.issue_token("u-fresh")).id == "u-fresh"


def test_removed_key_stops_a_cached_token_after_the_ttl(server: AuthgearTestServer, clock: Clock) -> None:
    # The verified-token cache must not outlive the key that signed the token.
    verifier, _ = jwt_verifier(server, clock)
    old_kid = kid_of(server)
    token = server.issue_token()
    for _ in range(3):
        verifier.verify(token)
    assert verifier.cache_hits >= 1
    server.rotate_keys()
    server.remove_key(old_kid)
    clock.advance(TTL)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_replaced_key_material_under_the_same_kid_is_not_trusted(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, _ = jwt_verifier(server, clock)
    original = server.signing_key
    token = server.issue_token()
    assert verifier.verify(token)
    # Same kid, different key: tokens signed by the old material stop verifying after the next fetch.
    server.rotate_keys(keep_old=False)
    server.publish_jwks([public(RSAKey.generate_key(2048), kid=original.kid, use="sig", alg="RS256")])
    clock.advance(TTL)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)
    assert verifier.verify(server.issue_token("u2")).id == "u2"


# -- unknown kids ----------------------------------------------------------------------------------------------


def test_unknown_kid_flood_costs_a_few_fetches(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, _ = jwt_verifier(server, clock, jwks_refetch_cooldown=COOLDOWN)
    good = server.issue_token("u-good")
    assert verifier.verify(good)
    claims = server.claims_for("attacker")
    simulated = 100.0
    for _ in range(200):
        token = sign(claims, server.signing_key, header={"kid": str(uuid.uuid4())})
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)
        clock.advance(simulated / 200)
    # One fetch at start, then at most one per cooldown over the simulated 100 seconds.
    assert server.hits("jwks") <= 1 + int(simulated // COOLDOWN) + 1
    assert server.hits("jwks") >= 2  # the cooldown does let a real rotation through
    assert server.hits("discovery") == 1
    assert verifier.verify(good).id == "u-good"


def test_unknown_kid_flood_on_a_real_clock(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    assert verifier.verify(server.issue_token())
    claims = server.claims_for("attacker")
    for _ in range(200):
        token = sign(claims, server.signing_key, header={"kid": uuid.uuid4().hex})
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)
    assert server.hits("jwks") <= 2


def test_rotation_right_after_the_first_fetch_verifies_at_once(server: AuthgearTestServer, clock: Clock) -> None:
    # Authgear signs with a new key as soon as it publishes it: the first unknown kid after any fetch refetches,
    # so the new token verifies without waiting out a cooldown (the clock does not move here at all).
    verifier, _ = jwt_verifier(server, clock, jwks_refetch_cooldown=COOLDOWN)
    assert verifier.verify(server.issue_token("u-old")).id == "u-old"
    assert server.hits("jwks") == 1
    server.rotate_keys()
    assert verifier.verify(server.issue_token("u-new")).id == "u-new"
    assert server.hits("jwks") == 2
    assert verifier.verify(server.issue_token("u-newer")).id == "u-newer"
    assert server.hits("jwks") == 2


def test_rotation_right_after_a_scheduled_fetch_verifies_at_once(server: AuthgearTestServer) -> None:
    # Through the whole verifier on the real clock: a scheduled (first) fetch leaves no cooldown behind.
    verifier = Verifier(Settings(**server.settings(jwks_refetch_cooldown=COOLDOWN)))
    assert verifier.authenticate(bearer_request(server.issue_token("u-old"))).id == "u-old"
    server.rotate_keys()
    token = server.issue_token("u-new")
    assert verifier.authenticate(bearer_request(token)).id == "u-new"
    assert (server.hits("discovery"), server.hits("jwks")) == (1, 2)


def test_refetch_cooldown_spaces_unknown_kid_refetches(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock, jwks_refetch_cooldown=COOLDOWN)
    assert cache.get("unknown-1") is None
    assert server.hits("jwks") == 2  # the initial fetch, then one refetch for the unknown kid
    clock.advance(COOLDOWN - 1)
    assert cache.get("unknown-2") is None
    assert server.hits("jwks") == 2
    clock.advance(1)
    assert cache.get("unknown-3") is None
    assert server.hits("jwks") == 3
    assert cache.get("unknown-4") is None
    assert server.hits("jwks") == 3
    assert cache.stats.refetches_refused == 2


def test_concurrent_flood_of_random_kids_costs_one_fetch_per_cooldown(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock, jwks_refetch_cooldown=COOLDOWN)
    assert cache.get(kid_of(server)) is not None
    threads_count, kids_each = 8, 25

    def look_up_random_kids(_: int) -> None:
        for _ in range(kids_each):
            assert cache.get(str(uuid.uuid4())) is None

    for rounds in range(1, 4):
        together(threads_count, look_up_random_kids)
        assert server.hits("jwks") == 1 + rounds  # one refetch in this cooldown, whatever the thread count
        clock.advance(COOLDOWN)
    assert cache.get(kid_of(server)) is not None


@pytest.mark.parametrize("cooldown", [COOLDOWN, 0], ids=["cooldown", "no-cooldown"])
def test_concurrent_unknown_kid_causes_one_fetch(server: AuthgearTestServer, clock: Clock, cooldown: float) -> None:
    # Even without a cooldown, threads that waited for a fetch started after they looked do not fetch again.
    cache = cache_for(server, clock, jwks_refetch_cooldown=cooldown)
    assert cache.get(kid_of(server)) is not None
    new_key = server.rotate_keys()
    clock.advance(max(cooldown, 1))
    threads_count = 32
    found = together(threads_count, lambda _: cache.get(new_key.kid or ""))
    assert len(found) == threads_count
    assert server.hits("jwks") == 2
    # Threads that arrived during the fetch waited for it and found the new key; none fetched again.
    assert all(key is not None and key.kid == new_key.kid for key in found)


def test_concurrent_cold_start_causes_one_fetch(server: AuthgearTestServer) -> None:
    verifier, _ = jwt_verifier(server)
    tokens = [server.issue_token(f"u{i}") for i in range(16)]
    ids = together(len(tokens), lambda i: verifier.verify(tokens[i]).id)
    assert sorted(ids) == sorted(f"u{i}" for i in range(16))
    assert (server.hits("discovery"), server.hits("jwks")) == (1, 1)


def test_still_current_never_fetches_for_an_unknown_kid(server: AuthgearTestServer, clock: Clock) -> None:
    # What caches of verified tokens use: it follows the TTL but is no way to trigger a refetch.
    cache = cache_for(server, clock)
    key = cache.get(kid_of(server))
    assert key is not None and cache.still_current(key)
    clock.advance(COOLDOWN)
    for _ in range(5):
        assert not cache.still_current(dataclasses.replace(key, kid=str(uuid.uuid4())))
    assert server.hits("jwks") == 1
    clock.advance(TTL)
    assert cache.still_current(key)
    assert server.hits("jwks") == 2


def test_requests_do_not_queue_behind_a_slow_refresh(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock, http_timeout=5)
    kid = kid_of(server)
    assert cache.get(kid) is not None
    server.fail("jwks", "slow", delay=1.0)
    clock.advance(TTL)
    refresher = threading.Thread(target=cache.get, args=(kid,))
    refresher.start()
    for _ in range(2000):  # until the refresher holds the lock and is inside its fetch
        if server.hits("jwks") == 2:
            break
        threading.Event().wait(0.005)
    assert server.hits("jwks") == 2
    # This request finds the refresh running and answers from the current keys, without waiting for it:
    # the refresher is still inside its fetch when this returns.
    assert cache.get(kid) is not None
    assert refresher.is_alive()
    refresher.join(timeout=30)
    assert server.hits("jwks") == 2


# -- outages ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "html", "garbage", "empty", "bad_keys", "oversized", "redirect"])
def test_jwks_outage_serves_the_last_good_keys(server: AuthgearTestServer, clock: Clock, mode: str) -> None:
    verifier, cache = jwt_verifier(server, clock, jwks_max_stale=MAX_STALE)
    token = server.issue_token()
    assert verifier.verify(token)
    server.fail("jwks", mode)
    clock.advance(TTL)
    fresh = server.issue_token("u-during-outage")  # signed by the same, still published, key
    assert verifier.verify(fresh).id == "u-during-outage"
    assert server.hits("jwks") == 2
    assert cache.stats.fetch_failures == 1
    assert cache.health()["stale"] is True
    assert cache.health()["ready"] is True
    # Retries are spaced by the backoff, not one per request.
    for _ in range(20):
        assert verifier.verify(server.issue_token("u-again"))
    assert server.hits("jwks") == 2
    clock.advance(_FAILURE_BACKOFF)
    assert verifier.verify(server.issue_token("u-later"))
    assert server.hits("jwks") == 3


def test_stale_keys_are_bounded_by_max_stale(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, cache = jwt_verifier(server, clock, jwks_max_stale=1000)
    token = server.issue_token()
    assert verifier.verify(token)
    server.fail("jwks", "500")
    clock.advance(999)
    assert verifier.verify(server.issue_token("u-stale"))
    clock.advance(_FAILURE_BACKOFF)
    # 1004 seconds after the last good fetch: the keys are too old to trust, even for a cached token.
    with pytest.raises(ProviderUnavailableError):
        verifier.verify(token)
    with pytest.raises(ProviderUnavailableError):
        verifier.verify(server.issue_token("u-late"))
    assert cache.keys == {}
    assert cache.health()["ready"] is False
    # Recovery: once the endpoint answers again, keys are loaded and tokens verify.
    server.heal()
    clock.advance(_FAILURE_BACKOFF)
    assert verifier.verify(token)


def test_unreachable_server_serves_the_last_good_keys(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, cache = jwt_verifier(server, clock)
    token = server.issue_token()
    assert verifier.verify(token)
    jwks_before = server.hits("jwks")
    with server.unreachable():
        clock.advance(TTL)
        assert verifier.verify(server.issue_token("u2")).id == "u2"
        assert cache.stats.fetch_failures == 1
    assert server.hits("jwks") == jwks_before  # the refused connection never reached it
    clock.advance(_FAILURE_BACKOFF)
    assert verifier.verify(token)
    assert cache.health()["stale"] is False


def test_no_keys_ever_is_unavailable(server: AuthgearTestServer, clock: Clock) -> None:
    verifier, cache = jwt_verifier(server, clock)
    token = server.issue_token()
    with server.unreachable():
        for _ in range(5):
            with pytest.raises(ProviderUnavailableError):
                verifier.verify(token)
    assert cache.health()["ready"] is False
    clock.advance(_FAILURE_BACKOFF)
    assert verifier.verify(token)


def test_jwks_without_a_usable_key_is_unavailable(server: AuthgearTestServer, clock: Clock) -> None:
    # Only ES256 allowed, and the JWKS holds an RSA key and a symmetric key: nothing usable.
    server.publish_jwks([{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}])
    cache = cache_for(server, clock, algorithms=["ES256"])
    with pytest.raises(ProviderUnavailableError):
        cache.get("hmac")
    assert "no usable key" in (cache.health()["last_error"] or "")


@pytest.mark.parametrize("mode", ["slow", "drip"])
def test_hanging_jwks_endpoint_is_cut_by_the_deadline(server: AuthgearTestServer, clock: Clock, mode: str) -> None:
    cache = cache_for(server, clock, http_timeout=0.3)
    server.fail("jwks", mode, delay=1.5)
    with pytest.raises(ProviderUnavailableError):
        cache.get(kid_of(server))
    assert cache.stats.fetch_failures == 1
    assert "did not" in (cache.health()["last_error"] or "") or "timed out" in (cache.health()["last_error"] or "")


def test_redirect_is_not_followed(server: AuthgearTestServer, clock: Clock) -> None:
    with AuthgearTestServer() as elsewhere:
        server.fail("jwks", "redirect", location=f"{elsewhere.endpoint}/oauth2/jwks")
        cache = cache_for(server, clock)
        with pytest.raises(ProviderUnavailableError):
            cache.get(elsewhere.signing_key.kid or "")
        assert elsewhere.hits("jwks") == 0


# -- key policy ------------------------------------------------------------------------------------------------


def public(key: Any, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = key.as_dict(private=False)
    out.update(extra)
    return out


def test_key_policy() -> None:
    rsa = RSAKey.generate_key(2048)
    weak = RSAKey.generate_key(1024)
    ec = ECKey.generate_key("P-256")
    ec384 = ECKey.generate_key("P-384")
    ed = OKPKey.generate_key("Ed25519")
    ed448 = OKPKey.generate_key("Ed448")
    document = {
        "keys": [
            public(rsa, kid="rsa", use="sig", alg="RS256"),
            public(rsa, kid="rsa-no-use"),
            public(weak, kid="rsa-1024", use="sig", alg="RS256"),
            public(rsa, kid="rsa-enc", use="enc"),
            public(rsa, kid="rsa-ops-encrypt", key_ops=["encrypt"]),
            public(rsa, kid="rsa-ops-verify", key_ops=["verify"]),
            public(rsa, kid="rsa-alg-hs", alg="HS256"),
            public(rsa, kid="rsa-alg-not-allowed", alg="RS512"),
            public(ec, kid="ec", use="sig"),
            public(ec, kid="ec-wrong-alg", alg="ES384"),
            public(ec384, kid="ec384"),
            public(ed, kid="ed25519"),
            public(ed448, kid="ed448"),
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "alg": "HS256"},
            {"kty": "RSA", "kid": "rsa-broken", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-missing-e", "n": rsa.as_dict()["n"]},
            {"kty": "EC", "kid": "ec-off-curve", "crv": "P-256", "x": ec.as_dict()["x"], "y": ec.as_dict()["x"]},
            {"kty": "XYZ", "kid": "unknown-kty"},
            public(rsa, kid=""),
            public(rsa, kid=7),
            public(rsa, kid="k" * 300),
            "not-an-object",
            None,
        ]
    }
    keys = _parse_jwks(document, ALL_ASYMMETRIC)
    assert set(keys) == {"rsa", "rsa-no-use", "rsa-ops-verify", "ec", "ec384", "ed25519"}
    assert keys["rsa"].algorithms == {"RS256"}
    assert keys["rsa-no-use"].algorithms == {"RS256", "PS256"}
    assert keys["ec"].algorithms == {"ES256"}
    assert keys["ec384"].algorithms == {"ES384"}
    assert keys["ed25519"].algorithms == {"EdDSA"}
    # Only public material is kept, even when the JWKS (wrongly) publishes private parts.
    leaked = _parse_jwks({"keys": [dict(rsa.as_dict(private=True), kid="leaky")]}, ALL_ASYMMETRIC)
    assert leaked["leaky"].key.is_private is False


def test_duplicate_kids_are_trusted_for_neither_key() -> None:
    a, b = RSAKey.generate_key(2048), RSAKey.generate_key(2048)
    keys = _parse_jwks({"keys": [public(a, kid="same"), public(b, kid="same"), public(a, kid="a")]}, ALL_ASYMMETRIC)
    assert set(keys) == {"a"}


def test_duplicate_kid_in_the_served_jwks_verifies_nothing(server: AuthgearTestServer) -> None:
    # A second key published under the signing key's kid: we cannot tell which one is meant, so neither is used.
    token = server.issue_token()
    duplicated = kid_of(server)
    server.rotate_keys()
    server.publish_jwks([public(RSAKey.generate_key(2048), kid=duplicated, use="sig", alg="RS256")])
    verifier, cache = jwt_verifier(server)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)
    assert set(cache.keys) == {kid_of(server)}
    assert verifier.verify(server.issue_token("u-new")).id == "u-new"
    server.publish_jwks([])
    assert jwt_verifier(server)[0].verify(token)


def test_a_refused_duplicate_does_not_hide_a_good_key() -> None:
    good, weak = RSAKey.generate_key(2048), RSAKey.generate_key(1024)
    keys = _parse_jwks({"keys": [public(weak, kid="k"), public(good, kid="k", use="sig")]}, ALL_ASYMMETRIC)
    assert set(keys) == {"k"}


@pytest.mark.parametrize(
    "document",
    [{}, {"keys": "x"}, {"keys": None}],
    ids=["empty-object", "keys-string", "keys-null"],
)
def test_not_a_jwks(document: Any) -> None:
    with pytest.raises(ValueError):
        _parse_jwks(document, ALL_ASYMMETRIC)


def test_number_of_keys_is_capped() -> None:
    rsa = public(RSAKey.generate_key(2048))
    keys = _parse_jwks({"keys": [dict(rsa, kid=f"k{i}") for i in range(MAX_KEYS + 50)]}, ALL_ASYMMETRIC)
    assert len(keys) == MAX_KEYS


def test_published_weak_symmetric_and_encryption_keys_never_verify(server: AuthgearTestServer) -> None:
    weak = new_signing_key(1024)
    enc = RSAKey.generate_key(2048, parameters={"kid": "enc-key"})
    secret = OctKey.import_key("an-hmac-secret-that-someone-published", parameters={"kid": "oct-key"})
    server.publish_jwks([public(weak), public(enc, use="enc"), secret.as_dict(private=True)])
    verifier, cache = jwt_verifier(server, algorithms=["RS256"])
    claims = server.claims_for("attacker")
    forged = [
        sign(claims, weak),
        sign(claims, enc),
        sign(claims, secret, alg="HS256"),
    ]
    for token in forged:
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)
    assert set(cache.keys) == {kid_of(server)}
    assert verifier.verify(server.issue_token("u-real")).id == "u-real"


OTHER_KEYS: dict[str, Callable[[], Any]] = {
    "ES256": lambda: ECKey.generate_key("P-256", parameters={"kid": "ec-p256"}),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "ed25519"}),
    "PS256": lambda: RSAKey.generate_key(3072, parameters={"kid": "rsa-3072"}),
}


@pytest.mark.parametrize("alg", sorted(OTHER_KEYS))
def test_other_asymmetric_keys_verify_when_allowed(server: AuthgearTestServer, alg: str) -> None:
    key = OTHER_KEYS[alg]()
    server.publish_jwks([public(key)])
    token = sign(server.claims_for("u-other-alg"), key, alg=alg)
    allowed, _ = jwt_verifier(server, algorithms=["RS256", alg])
    assert allowed.verify(token).id == "u-other-alg"
    refused, _ = jwt_verifier(server, algorithms=["RS256"])
    with pytest.raises(InvalidTokenError):
        refused.verify(token)


def test_health(server: AuthgearTestServer, clock: Clock) -> None:
    cache = cache_for(server, clock)
    before = cache.health()
    assert before["ready"] is False
    assert before["keys"] == 0
    cache.get(kid_of(server))
    after = cache.health()
    assert after["ready"] is True
    assert after["keys"] == 1
    assert after["age_seconds"] == 0
    assert after["fetches"] == 1
