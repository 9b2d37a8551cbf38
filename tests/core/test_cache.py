"""The resolver cache: keys, the local LRU, the sqlite store (nothing raw, expiry, tampering), configuration."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flask_authgear import ConfigurationError, InvalidTokenError, Settings, Verifier
from flask_authgear.core.cache import (
    _PURGE_INTERVAL,
    CredentialKeyer,
    SharedCache,
)
from flask_authgear.core.lru import LRU
from flask_authgear.testing.server import AuthgearTestServer, TestSession
from tests.support.auth import authenticate_secrets, bearer_request
from tests.support.clock import clocked, wall_clock

SECRET = "a-shared-cache-secret-0123456789"
MakeVerifier = Callable[..., Verifier]
pytestmark = pytest.mark.usefixtures("healed_server")


# -- keys -------------------------------------------------------------------------------------------------


def test_keys_depend_on_every_credential_and_nothing_is_ambiguous() -> None:
    keyer = CredentialKeyer(b"k" * 32, "http://authgear/_resolver/resolve")
    pairs = [
        (None, None),
        ("", None),
        (None, ""),
        ("Bearer a", None),
        (None, "Bearer a"),
        ("Bearer a", "s=1"),
        ("Bearer a", "s=2"),
        ("Bearer a|1:s=1", None),
        ("Bearer a|", "1:s=1"),
        ("-", None),
    ]
    keys = [keyer.key(a, c) for a, c in pairs]
    assert len(set(keys)) == len(pairs)
    assert keyer.key("Bearer a", "s=1") == keys[5]  # deterministic


def test_keys_are_keyed_by_the_secret_and_the_target_and_never_contain_the_credential() -> None:
    token = "Bearer secret-token-value"
    one = CredentialKeyer(b"1" * 32, "http://a/_resolver/resolve").key(token, None)
    two = CredentialKeyer(b"2" * 32, "http://a/_resolver/resolve").key(token, None)
    other_target = CredentialKeyer(b"1" * 32, "http://b/_resolver/resolve").key(token, None)
    assert len({one, two, other_target}) == 3
    assert "secret" not in one and len(one) == 64


# -- the shared level: get and put ------------------------------------------------------------------------


def _shared(tmp_path: Path, clock: Callable[[], float] = time.time) -> SharedCache:
    settings = Settings(endpoint="http://127.0.0.1:9", mode="resolver", cache=_sqlite(tmp_path), cache_secret=SECRET)
    return SharedCache(settings, clock)


def test_the_shared_level_gets_the_answer_and_its_age_or_nothing(tmp_path: Path) -> None:
    clock = wall_clock()
    shared = _shared(tmp_path, clock)
    shared.put("Bearer rita", None, {"x-authgear-session-valid": "true", "x-authgear-user-id": "rita"}, ttl=60)
    shared.put(None, "s=nobody", {"x-authgear-session-valid": "false"}, ttl=60)
    clock.advance(2.5)
    found = shared.get("Bearer rita", None)
    assert found is not None and found[0] is not None
    assert (found[0].id, found[1]) == ("rita", 2.5)
    assert shared.get(None, "s=nobody") == (None, 2.5)  # a negative answer is an answer, not "nothing"
    assert shared.get("Bearer sam", None) is None
    assert shared.get(None, "Bearer rita") is None  # the same text as a cookie is other credentials


def test_an_entry_copied_to_another_key_is_rejected_not_served(tmp_path: Path) -> None:
    shared = _shared(tmp_path)
    shared.put("Bearer admin", None, {"x-authgear-session-valid": "true", "x-authgear-user-id": "admin"}, ttl=60)
    entry = shared.backend.get_response(shared.keyer.key("Bearer admin", None))
    assert entry is not None
    mallory = shared.keyer.key("Bearer mallory", None)
    shared.backend.save_response(entry, mallory)  # what a writer with access to the store could do
    assert shared.get("Bearer mallory", None) is None
    assert shared.rejected_entries == 1
    assert shared.backend.get_response(mallory) is None  # deleted, so the resolver's answer takes its place


# -- the LRU and the local level ------------------------------------------------------------------------


def test_lru_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache: LRU[str, int] = LRU(3)
    for i in range(3):
        cache[f"k{i}"] = i
    assert cache.get("k0") == 0  # k0 becomes the most recent
    cache["k3"] = 3
    assert cache.get("k1") is None
    assert [cache.get(k) for k in ("k0", "k2", "k3")] == [0, 2, 3]
    assert cache.pop("k2") == 2 and cache.pop("k2") is None
    for i in range(1000):
        cache[f"flood{i}"] = i
    assert len(cache) == 3
    assert [cache.get(f"flood{i}") for i in (996, 997, 998, 999)] == [None, 997, 998, 999]
    cache.clear()
    assert len(cache) == 0


def test_lru_of_size_zero_stores_nothing() -> None:
    disabled: LRU[str, int] = LRU(0)
    disabled["k"] = 1
    assert disabled.get("k") is None and len(disabled) == 0


def test_local_entries_expire_by_their_kind_on_the_injected_clock(
    server: AuthgearTestServer, make_verifier: MakeVerifier
) -> None:
    clock = wall_clock()
    verifier = clocked(make_verifier(resolver_cache_ttl=60, resolver_negative_ttl=5), clock)
    session = server.create_session("kim")
    requests = [bearer_request(session.token), bearer_request("nobody")]

    def ask_both() -> None:
        assert verifier.authenticate(requests[0]).id == "kim"
        with pytest.raises(InvalidTokenError):
            verifier.authenticate(requests[1])

    ask_both()
    clock.advance(4.9)
    ask_both()
    assert server.hits("resolver") == 2
    clock.advance(0.2)  # the negative answer is due, the positive one is not
    ask_both()
    assert server.hits("resolver") == 3
    clock.advance(55)
    ask_both()
    assert server.hits("resolver") == 5


def test_the_memory_cache_is_the_local_level_alone(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session("max")
    verifier = make_verifier(resolver_local_cache_size=1)
    assert verifier.resolver is not None and verifier.resolver.shared is None
    verifier.authenticate(bearer_request(session.token))
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request("other"))  # evicts max's answer: nothing else holds it
    verifier.authenticate(bearer_request(session.token))
    assert server.hits("resolver") == 3
    assert verifier.health()["resolver"]["backend"] == "memory"


def test_local_level_answers_without_the_shared_level(server: AuthgearTestServer, make_verifier: MakeVerifier) -> None:
    session = server.create_session("lou")
    verifier = make_verifier()
    for _ in range(5):
        verifier.authenticate(bearer_request(session.token))
    health = verifier.health()["resolver"]
    assert (health["local_hits"], health["shared_hits"], health["resolver_calls"]) == (4, 0, 1)


def test_local_entries_never_outlive_the_shared_entry(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    session = server.create_session("mia")
    clock = wall_clock()
    first = clocked(make_verifier(cache=f"sqlite:///{tmp_path / 'resolver.sqlite'}", resolver_cache_ttl=2.0), clock)
    first.authenticate(bearer_request(session.token))
    assert first.resolver is not None
    first.resolver.local.clear()
    clock.advance(1.2)
    first.authenticate(bearer_request(session.token))  # shared hit, 0.8 s left
    assert first.health()["resolver"]["shared_hits"] == 1
    server.revoke(session)
    clock.advance(0.9)  # past the shared entry's age limit, well within a fresh TTL
    with pytest.raises(InvalidTokenError):
        first.authenticate(bearer_request(session.token))


# -- the sqlite store -------------------------------------------------------------------------------------


def _store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def _needles(*values: str) -> list[bytes]:
    out: list[bytes] = []
    for value in values:
        raw = value.encode()
        out += [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]
    return out


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cache' / 'resolver.sqlite'}"


def test_sqlite_store_holds_no_raw_credential(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    (tmp_path / "cache").mkdir()
    verifier = make_verifier(cache=_sqlite(tmp_path), cache_secret=SECRET)
    secrets_seen = authenticate_secrets(server, verifier)
    verifier.close()
    data = _store_bytes(tmp_path / "cache")
    assert b"user-0" in data  # the answers are there ...
    for needle in _needles(*secrets_seen):
        assert needle not in data  # ... the credentials are not
    for name in (b"Authorization", b"authorization", b"Cookie", b"cookie", b"Bearer", b"Set-Cookie"):
        assert name not in data


def _rows(tmp_path: Path) -> dict[str, tuple[dict[str, Any], int]]:
    with sqlite3.connect(tmp_path / "cache" / "resolver.sqlite") as con:
        return {k: (json.loads(v), e) for k, v, e in con.execute("select key, value, expires from responses")}


def test_sqlite_entries_expire_after_the_ttl_of_their_kind(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    (tmp_path / "cache").mkdir()
    session = server.create_session("nia")
    verifier = make_verifier(
        cache=_sqlite(tmp_path), cache_secret=SECRET, resolver_cache_ttl=120, resolver_negative_ttl=7
    )
    now = time.time()
    verifier.authenticate(bearer_request(session.token))
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request("nobody"))
    lifetimes = sorted(expires - now for _, expires in _rows(tmp_path).values())
    assert len(lifetimes) == 2
    assert 6 <= lifetimes[0] <= 9 and 119 <= lifetimes[1] <= 122


def test_sqlite_store_is_shared_by_verifiers_with_the_same_secret_only(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    (tmp_path / "cache").mkdir()
    session = server.create_session("olga")
    request = bearer_request(session.token)
    make_verifier(cache=_sqlite(tmp_path), cache_secret=SECRET).authenticate(request)
    second = make_verifier(cache=_sqlite(tmp_path), cache_secret=SECRET)
    assert second.authenticate(request).id == "olga"
    assert server.hits("resolver") == 1
    assert second.health()["resolver"]["shared_hits"] == 1
    make_verifier(cache=_sqlite(tmp_path), cache_secret="another-secret-0123456789").authenticate(request)
    assert server.hits("resolver") == 2


@pytest.mark.parametrize("attack", ["edit-user", "rejuvenate", "copy-to-other-key"])
def test_tampered_sqlite_entries_are_refused(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path, attack: str
) -> None:
    (tmp_path / "cache").mkdir()
    admin = server.create_session("admin-user", roles=["admin"])
    mallory = server.create_session("mallory")
    verifier = make_verifier(cache=_sqlite(tmp_path), cache_secret=SECRET, resolver_local_cache_size=0)
    verifier.authenticate(bearer_request(admin.token))
    verifier.authenticate(bearer_request(mallory.token))
    rows = _rows(tmp_path)
    assert verifier.resolver is not None
    admin_key = verifier.resolver.shared.keyer.key(admin.authorization, None)
    mallory_key = verifier.resolver.shared.keyer.key(mallory.authorization, None)
    victim: TestSession
    if attack == "edit-user":
        target, value = mallory_key, rows[mallory_key][0]
        value["headers"]["x-authgear-user-id"] = "admin-user"
        value["headers"]["x-authgear-user-roles"] = "admin"
        victim = mallory
    elif attack == "rejuvenate":
        target, value = admin_key, rows[admin_key][0]
        value["headers"]["Flask-Authgear-Answered-At"] = repr(time.time() - 0.5)
        victim = admin
    else:
        target, value = mallory_key, rows[admin_key][0]
        victim = mallory
    with sqlite3.connect(tmp_path / "cache" / "resolver.sqlite") as con:
        con.execute("update responses set value = ? where key = ?", (json.dumps(value), target))
    hits = server.hits("resolver")
    user = verifier.authenticate(bearer_request(victim.token))
    assert user.id == victim.user_id
    assert user.roles == frozenset(victim.roles)
    assert server.hits("resolver") == hits + 1
    assert verifier.health()["resolver"]["rejected_entries"] == 1


#: Entries another writer could leave (valid JSON, a field of the wrong type), by what is wrong; a string is
#: written as it is.
MALFORMED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "status-as-word": lambda entry: {**entry, "status_code": "OK"},
    "headers-as-string": lambda entry: {**entry, "headers": "x-authgear-user-id: rita"},
    "header-as-number": lambda entry: {**entry, "headers": {**entry["headers"], "x-authgear-user-id": 7}},
    "expiry-as-word": lambda entry: {**entry, "expires": "soon"},
    "not-an-object": lambda entry: [entry],
    "nested-too-deep": lambda entry: json.dumps(entry)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}",
}


@pytest.mark.parametrize("damage", MALFORMED)
def test_a_malformed_sqlite_entry_is_a_miss_not_an_outage(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path, damage: str
) -> None:
    (tmp_path / "cache").mkdir()
    session, other = server.create_session("rita"), server.create_session("sam")
    verifier = make_verifier(cache=_sqlite(tmp_path), cache_secret=SECRET, resolver_local_cache_size=0)
    assert verifier.authenticate(bearer_request(session.token)).id == "rita"
    assert verifier.resolver is not None
    key = verifier.resolver.shared.keyer.key(session.authorization, None)
    entry = MALFORMED[damage](_rows(tmp_path)[key][0])
    with sqlite3.connect(tmp_path / "cache" / "resolver.sqlite") as con:
        value = entry if isinstance(entry, str) else json.dumps(entry)
        con.execute("update responses set value = ? where key = ?", (value, key))
    hits = server.hits("resolver")
    assert verifier.authenticate(bearer_request(session.token)).id == "rita"
    assert server.hits("resolver") == hits + 1
    health = verifier.health()["resolver"]
    assert (health["malformed_entries"], health["backend_errors"], health["rejected_entries"]) == (1, 0, 0)
    # The store stays in use, for this credential (the entry was replaced) and for every other one.
    assert verifier.authenticate(bearer_request(session.token)).id == "rita"
    assert verifier.authenticate(bearer_request(other.token)).id == "sam"
    assert verifier.authenticate(bearer_request(other.token)).id == "sam"
    assert server.hits("resolver") == hits + 2
    assert verifier.health()["resolver"]["shared_hits"] == 2


# -- configuration ----------------------------------------------------------------------------------------


def test_redis_cache_without_the_redis_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what "not installed" looks like to an import
    with pytest.raises(ConfigurationError, match=r"flask-authgear\[redis\]"):
        Verifier(Settings(endpoint="https://a.example", mode="resolver", cache="redis://127.0.0.1:6379/0"))


@pytest.mark.parametrize("spec", ["sqlite:///", "sqlite:////dev/null/cannot/be/here.sqlite"], ids=["empty", "bad"])
def test_unusable_sqlite_path_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="sqlite"):
        Verifier(Settings(endpoint="https://a.example", mode="resolver", cache=spec))


@pytest.mark.parametrize("spec", ["sqlite:/x", "mysql://db", "Memory", ""])
def test_unknown_cache_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="cache"):
        Settings(endpoint="https://a.example", mode="resolver", cache=spec)


def test_cache_secret_must_be_long_enough() -> None:
    with pytest.raises(ConfigurationError, match="cache_secret"):
        Settings(endpoint="https://a.example", mode="resolver", cache_secret="short")


def test_memory_mode_without_secret_needs_no_configuration(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    assert verifier.health()["resolver"]["backend"] == "memory"


def test_expired_entries_are_purged_from_a_sqlite_store(
    server: AuthgearTestServer, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    (tmp_path / "cache").mkdir()
    spec = _sqlite(tmp_path)
    # The stores drop entries by their real-time expiry: a clock 100 s behind writes entries already past it.
    clock = wall_clock(-100)
    verifier = clocked(make_verifier(cache=spec, cache_secret=SECRET, resolver_negative_ttl=0.5), clock)
    assert verifier.resolver is not None
    responses = verifier.resolver.shared.backend.responses
    for i in range(5):
        with pytest.raises(InvalidTokenError):
            verifier.authenticate(bearer_request(f"gone-{i}"))
    assert len(responses) == 5
    clock.advance(_PURGE_INTERVAL)
    session = server.create_session("purge-check")
    verifier.authenticate(bearer_request(session.token))  # a write triggers the purge
    assert len(responses) == 1
