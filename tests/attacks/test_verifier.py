"""The attack catalogue against the core verifier, in JWT and auto modes: every hostile token is refused,
deliberately and quietly.

"Deliberately" means through one of our own checks, never through the catch-all that turns a surprise into a
401 (that path logs an error, and any such log fails the test). "Quietly" means no response echoes attacker
input. The same catalogue runs against the adapters in ``test_adapters.py``.
"""

from __future__ import annotations

import json
import logging
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest

from flask_authgear.config import Settings
from flask_authgear.core.refusals import Reason, TokenError
from flask_authgear.core.request import RequestData
from flask_authgear.core.verifier import Verifier
from flask_authgear.errors import AuthgearError
from tests.support.attacks import (
    ALGORITHMS,
    INVALID_REQUEST,
    REASONS,
    Attack,
    AttackKit,
    shared_catalogue,
    shared_kit,
)
from tests.support.auth import bearer_request

CATALOGUE = shared_catalogue()


@pytest.fixture(scope="module")
def kit() -> AttackKit:
    return shared_kit()


@pytest.fixture(scope="module")
def verifier(kit: AttackKit) -> Verifier:
    # leeway 0 so that "exp equal to now" is exactly the boundary; ES256 allowed so EC attacks meet a real EC key.
    return Verifier(Settings(**kit.server.settings(leeway=0, algorithms=ALGORITHMS)))


@pytest.fixture(scope="module")
def auto_verifier(kit: AttackKit) -> Iterator[Verifier]:
    verifier = Verifier(Settings(**kit.server.settings(mode="auto", leeway=0, algorithms=ALGORITHMS)))
    yield verifier
    verifier.close()


def refuse(verifier: Verifier, authorization: str) -> AuthgearError:
    try:
        user = verifier.authenticate(RequestData(authorization=authorization))
    except AuthgearError as exc:
        return exc
    raise AssertionError(f"accepted as {user.id!r}")


def assert_no_echo(attack: Attack, headers: list[tuple[str, str]], body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    for probe in attack.probes():
        assert probe not in text, f"body echoes {probe[:40]!r}"
        for name, value in headers:
            assert probe not in value, f"header {name} echoes {probe[:40]!r}"


def test_catalogue_is_complete() -> None:
    """A guard against the catalogue silently shrinking: it covers every family the threat model names."""
    ids = {a.id for a in CATALOGUE}
    families = (
        "alg-none",
        "alg-NONE",
        "hs256-rsa-public-key-pem",
        "hs256-rsa-public-key-pem-no-final-newline",
        "hs256-rsa-public-key-jwk-json",
        "hs256-secret-empty",
        "es256-all-zero-signature",
        "jwk-header",
        "jku-",
        "x5u-",
        "x5c-",
        "attacker-key-known-kid",
        "kid-path-traversal",
        "kid-sql",
        "kid-int",
        "kid-very-long",
        "crit-unknown",
        "crit-not-a-list",
        "crit-nested",
        "crit-empty",
        "b64-false",
        "header-array",
        "payload-array",
        "deeply-nested",
        "duplicate",
        "exp-past",
        "exp-equal-now",
        "exp-missing",
        "exp-string",
        "exp-bool",
        "exp-nan",
        "exp-infinity",
        "exp-1e400",
        "nbf-future",
        "iat-future",
        "iss-wrong",
        "iss-trailing-slash",
        "iss-prefix",
        "iss-suffix",
        "iss-other-case",
        "iss-list",
        "iss-missing",
        "aud-wrong",
        "aud-empty",
        "aud-substring",
        "aud-non-string-member",
        "aud-missing",
        "sub-missing",
        "sub-int",
        "segments-2",
        "segments-4",
        "segments-5-jwe",
        "trailing-dot",
        "padding-on-signature",
        "standard-base64-alphabet",
        "bit-flip",
        "truncated",
        "signature-empty",
        "signature-borrowed",
        "oversized",
        "authorization-1mb",
        "non-ascii",
        "json-serialization",
        "id-token",
        "jwks-rsa-1024-key",
        "jwks-oct-key",
    )
    missing = [f for f in families if not any(i.startswith(f) or f in i for i in ids)]
    assert not missing
    assert len(CATALOGUE) >= 200


def test_every_attack_names_the_rule_that_refuses_it() -> None:
    """Each attack carries its expected refusal from where it is built, and every rule is aimed at."""
    assert all(attack.reason in REASONS for attack in CATALOGUE)
    # Every rule but the token's size, which only verify_token() reaches: in a request, a token longer than the
    # largest header is the header check's to refuse (400), before any token rule.
    assert {attack.reason for attack in CATALOGUE} == REASONS - {Reason.OVERSIZED}
    with pytest.raises(TypeError):
        Attack("no-reason", "Bearer x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not a known refusal"):
        Attack("unknown-reason", "Bearer x", "rejected")


def test_control_tokens_are_accepted(verifier: Verifier, auto_verifier: Verifier, kit: AttackKit) -> None:
    """Without this the catalogue could pass against a verifier that refuses everything."""
    for target in (verifier, auto_verifier):
        for token, sub in ((kit.valid("ctl-rs256"), "ctl-rs256"), (kit.valid_es256("ctl-es"), "ctl-es")):
            assert target.authenticate(bearer_request(token)).id == sub
        lower = target.authenticate(RequestData(authorization=f"bearer {kit.valid('ctl-lower')}"))
        assert lower.id == "ctl-lower"
    session = kit.server.create_session("ctl-session")
    assert auto_verifier.authenticate(bearer_request(session.token)).id == "ctl-session"


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("attack", CATALOGUE, ids=[a.id for a in CATALOGUE])
def test_core_refuses(verifier: Verifier, attack: Attack) -> None:
    error = refuse(verifier, attack.authorization)
    assert error.status_code == attack.status
    if attack.reason == INVALID_REQUEST:
        assert error.error == "invalid_request"
        assert not isinstance(error, TokenError), f"refused by the token rule {error.reason!r}, not the header check"
    else:
        assert error.error == "invalid_token"
        assert isinstance(error, TokenError)
        assert error.reason == attack.reason, "refused, but not by the rule aimed at"
    headers = error.headers(verifier.settings.realm)
    body = error.body()
    assert json.loads(body)["error"] == error.error
    assert dict(headers)["WWW-Authenticate"].startswith('Bearer realm="authgear"')
    assert_no_echo(attack, headers, body)


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("attack", CATALOGUE, ids=[a.id for a in CATALOGUE])
def test_auto_mode_refuses(auto_verifier: Verifier, attack: Attack) -> None:
    """In auto mode JWT-shaped tokens stay local and the rest go to the resolver: each path must refuse."""
    error = refuse(auto_verifier, attack.authorization)
    assert error.status_code == attack.status
    assert_no_echo(attack, error.headers(auto_verifier.settings.realm), error.body())


@pytest.mark.usefixtures("no_unexpected_errors")
def test_no_key_is_ever_fetched_from_a_token(kit: AttackKit) -> None:
    """``jku``/``x5u`` point at the attacker's live JWKS: running the whole catalogue must never call it."""
    verifier = Verifier(Settings(**kit.server.settings(leeway=0, algorithms=ALGORITHMS)))
    before = {t: kit.attacker.hits(t) for t in ("discovery", "jwks", "resolver")}
    for attack in CATALOGUE:
        refuse(verifier, attack.authorization)
    assert {t: kit.attacker.hits(t) for t in before} == before


def test_refusals_are_never_cached(kit: AttackKit) -> None:
    verifier = Verifier(Settings(**kit.server.settings(leeway=0, algorithms=ALGORITHMS)))
    bad = next(a for a in CATALOGUE if a.id == "signature-bit-flip")
    for _ in range(3):
        refuse(verifier, bad.authorization)
    assert len(verifier.jwt.cache) == 0
    assert verifier.jwt.cache_hits == 0


def test_malformed_requests_cost_no_fetch(kit: AttackKit) -> None:
    """Oversized and malformed headers are refused before any key lookup: no JWKS traffic at all."""
    verifier = Verifier(Settings(**kit.server.settings(leeway=0, algorithms=ALGORITHMS)))
    cheap = [a for a in CATALOGUE if a.status == 400 or a.id.startswith(("segments-", "alg-none", "header-array"))]
    assert len(cheap) > 20
    before = kit.server.hits("jwks") + kit.server.hits("discovery")
    for attack in cheap:
        refuse(verifier, attack.authorization)
    assert kit.server.hits("jwks") + kit.server.hits("discovery") == before


def test_oversized_headers_use_bounded_memory(verifier: Verifier, kit: AttackKit) -> None:
    """A megabyte-sized header is refused without copying it: the peak allocation stays far below its size."""
    huge = "Bearer " + kit.valid() * 200  # about 150 KB of plausible token text
    header_bomb = "Bearer " + "A" * (4 * 1024 * 1024)
    refuse(verifier, huge)  # warm up imports and caches
    tracemalloc.start()
    try:
        for value in (huge, header_bomb):
            tracemalloc.reset_peak()
            error = refuse(verifier, value)
            assert error.status_code == 400
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 64 * 1024, f"peak {peak} bytes for a {len(value)} byte header"
    finally:
        tracemalloc.stop()


def test_nested_json_within_the_size_limit_uses_bounded_memory(verifier: Verifier, kit: AttackKit) -> None:
    nested = next(a for a in CATALOGUE if a.id == "payload-deeply-nested")
    tracemalloc.start()
    try:
        error = refuse(verifier, nested.authorization)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.status_code == 401
    assert peak < 2 * 1024 * 1024


def test_exp_at_the_leeway_boundary_is_expired(kit: AttackKit) -> None:
    """With the default leeway, a token is refused from ``exp + leeway`` on ("on or after", RFC 7519 4.1.4)."""
    verifier = Verifier(Settings(**kit.server.settings()))
    leeway = verifier.settings.leeway
    assert leeway > 0
    expired = kit.token(claims=kit.claims(exp=int(time.time() - leeway)))
    error = refuse(verifier, f"Bearer {expired}")
    assert isinstance(error, TokenError) and error.reason == "expired"
    within = kit.token(claims=kit.claims("within-leeway", exp=int(time.time() - leeway / 2)))
    assert verifier.authenticate(bearer_request(within)).id == "within-leeway"


def test_es256_zero_signature_with_only_ec_allowed(kit: AttackKit) -> None:
    """CVE-2022-21449 ("psychic signatures"): r = s = 0 must fail the signature check itself, not only the alg."""
    verifier = Verifier(Settings(**kit.server.settings(leeway=0, algorithms=["ES256"])))
    assert verifier.authenticate(bearer_request(kit.valid_es256("ec-user"))).id == "ec-user"
    head, payload, _ = kit.valid_es256().split(".")
    error = refuse(verifier, f"Bearer {head}.{payload}.{'A' * 86}")
    assert isinstance(error, TokenError) and error.reason == "signature"


def test_logs_never_carry_attacker_input(kit: AttackKit, caplog: pytest.LogCaptureFixture) -> None:
    """Every record the library writes while refusing the catalogue, at every level, is free of attacker input."""
    verifier = Verifier(Settings(**kit.server.settings(mode="auto", leeway=0, algorithms=ALGORITHMS)))
    try:
        with caplog.at_level(logging.DEBUG, logger="flask_authgear"):
            for attack in CATALOGUE:
                refuse(verifier, attack.authorization)
    finally:
        verifier.close()
    records = [r for r in caplog.records if r.name.startswith("flask_authgear")]
    assert records  # refusals are logged (at DEBUG at least), so this check reads something
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in records)
    for attack in CATALOGUE:
        for probe in attack.probes():
            assert probe not in text, f"{attack.id}: a log record carries {probe[:30]!r}"


MUTATIONS = 3000
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/~"


def mutate(token: str, rng: random.Random) -> str:
    """One random edit of a valid token: replace, insert or delete a character, or move a segment."""
    kind = rng.randrange(5)
    i = rng.randrange(len(token))
    if kind == 0:
        return token[:i] + rng.choice(_ALPHABET) + token[i + 1 :]
    if kind == 1:
        return token[:i] + rng.choice(_ALPHABET) + token[i:]
    if kind == 2:
        return token[:i] + token[i + 1 :]
    parts = token.split(".")
    if kind == 3:
        rng.shuffle(parts)
        return ".".join(parts)
    return ".".join([*parts, parts[rng.randrange(3)]][-3:])


@pytest.mark.usefixtures("no_unexpected_errors")
def test_random_mutations_of_a_valid_token_are_refused(verifier: Verifier, kit: AttackKit) -> None:
    """Base64url is canonical here, so any edit of a token's text changes what is signed or the signature."""
    rng = random.Random(20260)
    valid = kit.valid("mutation-victim")
    assert verifier.authenticate(bearer_request(valid)).id == "mutation-victim"
    statuses: Counter[int] = Counter()
    for _ in range(MUTATIONS):
        mutated = mutate(valid, rng)
        if mutated == valid:
            continue
        error = refuse(verifier, f"Bearer {mutated}")
        statuses[error.status_code] += 1
    assert set(statuses) <= {400, 401}
    assert sum(statuses.values()) > MUTATIONS * 0.9
