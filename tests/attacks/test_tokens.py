"""Malformed and hostile tokens: every one is answered 401 ``invalid_token``, never a 500, never an echo.

Tokens are assembled from raw JSON and raw base64url, and signed with the server's real key where the attack
is "a genuine signature over bad content", so that only our own rules can stop them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from flask_authgear import InvalidRequestError, InvalidTokenError, Settings, Verifier
from flask_authgear.core.json import MAX_DEPTH
from flask_authgear.core.refusals import TokenError
from flask_authgear.testing import AuthgearTestServer
from flask_authgear.user import freeze
from tests.support.auth import bearer_request
from tests.support.clock import Clock
from tests.support.jwt import DROP, b64url, edited, jwt_verifier, sign, unb64url

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")


def js(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Kit:
    server: AuthgearTestServer
    attacker: AuthgearTestServer

    @property
    def key(self) -> RSAKey:
        return self.server.signing_key

    @property
    def kid(self) -> str:
        return self.key.kid or ""

    def header(self, **changes: Any) -> dict[str, Any]:
        return edited({"alg": "RS256", "typ": "at+jwt", "kid": self.kid}, changes)

    def claims(self, **changes: Any) -> dict[str, Any]:
        return edited(self.server.claims_for("user-1"), changes)

    def rs256(self, header_raw: bytes, payload_raw: bytes, key: RSAKey | None = None, alg: str = "RS256") -> str:
        """Sign raw header and payload bytes with a real key (default: the server's), whatever they contain."""
        signing_input = f"{b64url(header_raw)}.{b64url(payload_raw)}".encode()
        signature = JWSRegistry.algorithms[alg].sign(signing_input, key or self.key)
        return f"{signing_input.decode()}.{b64url(signature)}"

    def token(self, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
        return self.rs256(js(header or self.header()), js(claims or self.claims()))


def hs256(signing_input: str, secret: bytes) -> str:
    return b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def unsigned(k: Kit, header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64url(js(header))}.{b64url(js(claims))}.{signature}"


def alg_confusion(k: Kit, secret: bytes) -> str:
    signing_input = f"{b64url(js(k.header(alg='HS256')))}.{b64url(js(k.claims()))}"
    return f"{signing_input}.{hs256(signing_input, secret)}"


def public_pem(k: Kit) -> bytes:
    return k.key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def swap_payload(k: Kit) -> str:
    head, _, signature = k.token().split(".")
    other_payload = k.token(claims=k.claims(sub="admin")).split(".")[1]
    return f"{head}.{other_payload}.{signature}"


def noncanonical_last_char(token: str) -> str:
    # The signature of a 2048-bit key is 256 bytes: 342 base64url characters, the last holding 2 unused bits.
    head, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    return f"{head}.{payload}.{signature[:-1]}{alphabet[last | 0b11]}"


def attacker_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "attacker"})


def embedded_jwk(k: Kit) -> str:
    key = attacker_key()
    return sign(k.claims(), key, header={"jwk": key.as_dict(private=False)})


def jku(k: Kit) -> str:
    key = k.attacker.signing_key
    return sign(k.claims(), key, header={"jku": f"{k.attacker.endpoint}/oauth2/jwks"})


def x5u(k: Kit) -> str:
    key = k.attacker.signing_key
    return sign(k.claims(), key, header={"x5u": f"{k.attacker.endpoint}/oauth2/jwks", "kid": k.kid})


def deep_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


NOW = time.time

# Each builder gets the kit and returns a token. ids are the names.
CASES: dict[str, Callable[[Kit], str]] = {
    # -- algorithm
    "alg-none": lambda k: unsigned(k, k.header(alg="none"), k.claims()),
    "alg-None-capitalised": lambda k: unsigned(k, k.header(alg="None"), k.claims(), "c2ln"),
    "alg-none-with-signature": lambda k: unsigned(k, k.header(alg="none"), k.claims(), "c2ln"),
    "alg-missing": lambda k: k.token(header=k.header(alg=DROP)),
    "alg-not-a-string": lambda k: k.token(header=k.header(alg=["RS256"])),
    "hs256-with-public-key-pem": lambda k: alg_confusion(k, public_pem(k)),
    "hs256-with-public-key-n": lambda k: alg_confusion(k, unb64url(k.key.as_dict()["n"])),
    "hs256-with-public-jwk-json": lambda k: alg_confusion(k, js(k.key.as_dict(private=False))),
    "rs512-not-allowed": lambda k: k.rs256(js(k.header(alg="RS512")), js(k.claims()), alg="RS512"),
    "ps256-not-allowed": lambda k: k.rs256(js(k.header(alg="PS256")), js(k.claims()), alg="PS256"),
    "es256-against-rsa-key": lambda k: sign(
        k.claims(), ECKey.generate_key("P-256", parameters={"kid": k.kid}), alg="ES256"
    ),
    # -- issuer and audience
    "wrong-iss": lambda k: k.token(claims=k.claims(iss="https://evil.example.com")),
    "iss-trailing-slash": lambda k: k.token(claims=k.claims(iss=k.server.endpoint + "/")),
    "iss-other-case": lambda k: k.token(claims=k.claims(iss=k.server.endpoint.upper())),
    "iss-missing": lambda k: k.token(claims=k.claims(iss=DROP)),
    "iss-list": lambda k: k.token(claims=k.claims(iss=[k.server.endpoint])),
    "wrong-aud": lambda k: k.token(claims=k.claims(aud=["https://other.example.com"])),
    "wrong-aud-string": lambda k: k.token(claims=k.claims(aud="https://other.example.com")),
    "aud-empty-list": lambda k: k.token(claims=k.claims(aud=[])),
    "aud-missing": lambda k: k.token(claims=k.claims(aud=DROP)),
    "aud-number": lambda k: k.token(claims=k.claims(aud=1)),
    "aud-list-with-non-string": lambda k: k.token(claims=k.claims(aud=[k.server.endpoint, 1])),
    "aud-nested-list": lambda k: k.token(claims=k.claims(aud=[[k.server.endpoint]])),
    # -- time
    "expired": lambda k: k.token(claims=k.claims(exp=int(NOW()) - 3600)),
    "expired-beyond-leeway": lambda k: k.token(claims=k.claims(exp=int(NOW()) - 61)),
    "exp-missing": lambda k: k.token(claims=k.claims(exp=DROP)),
    "exp-string": lambda k: k.token(claims=k.claims(exp=str(int(NOW()) + 600))),
    "exp-bool": lambda k: k.token(claims=k.claims(exp=True)),
    "exp-null": lambda k: k.token(claims=k.claims(exp=None)),
    "exp-huge": lambda k: k.token(claims=k.claims(exp=10**30)),
    "exp-nan": lambda k: k.rs256(js(k.header()), js(k.claims(exp=0)).replace(b'"exp":0', b'"exp":NaN')),
    "exp-infinity": lambda k: k.rs256(js(k.header()), js(k.claims(exp=0)).replace(b'"exp":0', b'"exp":Infinity')),
    "nbf-in-future": lambda k: k.token(claims=k.claims(nbf=int(NOW()) + 3600)),
    "nbf-string": lambda k: k.token(claims=k.claims(nbf="0")),
    "iat-in-future": lambda k: k.token(claims=k.claims(iat=int(NOW()) + 3600)),
    "iat-nan": lambda k: k.rs256(js(k.header()), js(k.claims(iat=0)).replace(b'"iat":0', b'"iat":NaN')),
    "auth-time-string": lambda k: k.token(claims=k.claims(auth_time="yesterday")),
    # -- subject
    "sub-missing": lambda k: k.token(claims=k.claims(sub=DROP)),
    "sub-empty": lambda k: k.token(claims=k.claims(sub="")),
    "sub-number": lambda k: k.token(claims=k.claims(sub=42)),
    "sub-null": lambda k: k.token(claims=k.claims(sub=None)),
    "sub-list": lambda k: k.token(claims=k.claims(sub=["user-1"])),
    # -- payload and header shape
    "payload-array": lambda k: k.rs256(js(k.header()), js([k.claims()])),
    "payload-string": lambda k: k.rs256(js(k.header()), js("user-1")),
    "payload-number": lambda k: k.rs256(js(k.header()), b"1"),
    "payload-null": lambda k: k.rs256(js(k.header()), b"null"),
    "payload-not-json": lambda k: k.rs256(js(k.header()), b"sub=user-1"),
    "payload-not-utf8": lambda k: k.rs256(js(k.header()), b'{"sub":"\xff"}'),
    "payload-deeply-nested": lambda k: k.rs256(js(k.header()), deep_json(900)),
    "header-array": lambda k: k.rs256(js([k.header()]), js(k.claims())),
    "header-not-json": lambda k: k.rs256(b"RS256", js(k.claims())),
    "duplicate-claim-sub": lambda k: k.rs256(js(k.header()), js(k.claims())[:-1] + b',"sub":"admin"}'),
    "duplicate-claim-exp": lambda k: k.rs256(js(k.header()), js(k.claims())[:-1] + b',"exp":99999999999}'),
    "duplicate-header-alg": lambda k: k.rs256(js(k.header())[:-1] + b',"alg":"none"}', js(k.claims())),
    "duplicate-header-kid": lambda k: k.rs256(js(k.header())[:-1] + b',"kid":"other"}', js(k.claims())),
    # -- encoding
    "bad-base64-char": lambda k: k.token().replace(".", ".*", 1),
    "base64-padding": lambda k: ".".join(s + "=" for s in k.token().split(".")),
    "base64-standard-alphabet": lambda k: k.token().replace("-", "+").replace("_", "/") + "+/",
    "base64-bad-length": lambda k: k.token() + "AAA",
    "base64-noncanonical-bits": lambda k: noncanonical_last_char(k.token()),
    "base64-whitespace": lambda k: k.token().replace(".", ". ", 1),
    # -- segments
    "one-segment": lambda k: b64url(js(k.claims())),
    "two-segments": lambda k: ".".join(k.token().split(".")[:2]),
    "two-segments-trailing-dot": lambda k: ".".join(k.token().split(".")[:2]) + ".",
    "four-segments": lambda k: k.token() + ".c2ln",
    "five-segments-jwe-shaped": lambda k: b64url(js({"alg": "RSA-OAEP", "enc": "A256GCM"})) + ".a.b.c.d",
    "empty-segments": lambda k: "..",
    "empty-header": lambda k: "." + ".".join(k.token().split(".")[1:]),
    "empty-signature": lambda k: ".".join(k.token().split(".")[:2]) + ".",
    "empty-string": lambda k: "",
    "oversized": lambda k: k.token(claims=k.claims(padding="x" * 9000)),
    # -- type
    "id-token-typ-JWT": lambda k: k.token(header=k.header(typ="JWT")),
    "typ-missing": lambda k: k.token(header=k.header(typ=DROP)),
    "typ-other": lambda k: k.token(header=k.header(typ="dpop+jwt")),
    "typ-padded": lambda k: k.token(header=k.header(typ=" at+jwt")),
    "typ-not-a-string": lambda k: k.token(header=k.header(typ=["at+jwt"])),
    # -- key selection
    "kid-missing": lambda k: k.token(header=k.header(kid=DROP)),
    "kid-unknown": lambda k: k.token(header=k.header(kid=str(uuid.uuid4()))),
    "kid-empty": lambda k: k.token(header=k.header(kid="")),
    "kid-number": lambda k: k.token(header=k.header(kid=1)),
    "kid-huge": lambda k: k.token(header=k.header(kid="k" * 2000)),
    "kid-path-traversal": lambda k: k.token(header=k.header(kid="../../../../etc/passwd")),
    "jwk-header": embedded_jwk,
    "jku-header": jku,
    "x5u-header": x5u,
    "x5c-header": lambda k: k.token(header=k.header(x5c=["MIIB"])),
    "crit-header": lambda k: k.token(header=k.header(crit=["exp"], exp=1)),
    "b64-false-header": lambda k: k.token(header=k.header(b64=False, crit=["b64"])),
    "zip-header": lambda k: k.token(header=k.header(zip="DEF")),
    # -- signature
    "bad-signature": lambda k: flip_signature(k.token()),
    "signature-of-other-payload": swap_payload,
    "signed-by-another-key-same-kid": lambda k: k.rs256(js(k.header()), js(k.claims()), key=attacker_key()),
    # 342 signature characters cut to 321: a length no base64 text has, so always refused as malformed (cutting
    # to 322 leaves a random last character that one time in sixteen still decodes, to a too-short signature).
    "truncated-signature": lambda k: k.token()[:-21],
    "signature-of-zeros": lambda k: ".".join(k.token().split(".")[:2]) + "." + b64url(bytes(256)),
}

#: The rule each case must be refused by (``TokenError.reason``), so no case passes by accident.
REASONS = {
    "alg-none": "malformed",
    "alg-None-capitalised": "alg",
    "alg-none-with-signature": "alg",
    "alg-missing": "alg",
    "alg-not-a-string": "alg",
    "hs256-with-public-key-pem": "alg",
    "hs256-with-public-key-n": "alg",
    "hs256-with-public-jwk-json": "alg",
    "rs512-not-allowed": "alg",
    "ps256-not-allowed": "alg",
    "es256-against-rsa-key": "alg",
    "wrong-iss": "iss",
    "iss-trailing-slash": "iss",
    "iss-other-case": "iss",
    "iss-missing": "iss",
    "iss-list": "iss",
    "wrong-aud": "aud",
    "wrong-aud-string": "aud",
    "aud-empty-list": "aud",
    "aud-missing": "aud",
    "aud-number": "aud",
    "aud-list-with-non-string": "aud",
    "aud-nested-list": "aud",
    "expired": "expired",
    "expired-beyond-leeway": "expired",
    "exp-missing": "exp",
    "exp-string": "exp",
    "exp-bool": "exp",
    "exp-null": "exp",
    "exp-huge": "exp",
    "exp-nan": "malformed",
    "exp-infinity": "malformed",
    "nbf-in-future": "nbf",
    "nbf-string": "nbf",
    "iat-in-future": "iat",
    "iat-nan": "malformed",
    "auth-time-string": "auth_time",
    "sub-missing": "sub",
    "sub-empty": "sub",
    "sub-number": "sub",
    "sub-null": "sub",
    "sub-list": "sub",
    "payload-array": "malformed",
    "payload-string": "malformed",
    "payload-number": "malformed",
    "payload-null": "malformed",
    "payload-not-json": "malformed",
    "payload-not-utf8": "malformed",
    "payload-deeply-nested": "malformed",
    "header-array": "malformed",
    "header-not-json": "malformed",
    "duplicate-claim-sub": "malformed",
    "duplicate-claim-exp": "malformed",
    "duplicate-header-alg": "malformed",
    "duplicate-header-kid": "malformed",
    "bad-base64-char": "malformed",
    "base64-padding": "malformed",
    "base64-standard-alphabet": "malformed",
    "base64-bad-length": "malformed",
    "base64-noncanonical-bits": "malformed",
    "base64-whitespace": "malformed",
    "one-segment": "malformed",
    "two-segments": "malformed",
    "two-segments-trailing-dot": "malformed",
    "four-segments": "malformed",
    "five-segments-jwe-shaped": "malformed",
    "empty-segments": "malformed",
    "empty-header": "malformed",
    "empty-signature": "malformed",
    "empty-string": "malformed",
    "oversized": "oversized",
    "id-token-typ-JWT": "typ",
    "typ-missing": "typ",
    "typ-other": "typ",
    "typ-padded": "typ",
    "typ-not-a-string": "typ",
    "kid-missing": "kid",
    "kid-unknown": "unknown_kid",
    "kid-empty": "kid",
    "kid-number": "kid",
    "kid-huge": "kid",
    "kid-path-traversal": "unknown_kid",
    "jwk-header": "header",
    "jku-header": "header",
    "x5u-header": "header",
    "x5c-header": "header",
    "crit-header": "header",
    "b64-false-header": "header",
    "zip-header": "header",
    "bad-signature": "signature",
    "signature-of-other-payload": "signature",
    "signed-by-another-key-same-kid": "signature",
    "truncated-signature": "malformed",
    "signature-of-zeros": "signature",
}

#: A malformed header rather than a bad token (400 through the request path): not a valid RFC 6750 b64token,
#: or over the header cap.
MALFORMED_HEADER = {"bad-base64-char", "base64-padding", "base64-whitespace", "empty-string", "oversized"}


@pytest.fixture(scope="module")
def kit() -> Iterator[Kit]:
    with AuthgearTestServer() as server, AuthgearTestServer() as attacker:
        yield Kit(server, attacker)


@pytest.fixture(scope="module")
def verifier(kit: Kit) -> Verifier:
    verifier = Verifier(Settings(**kit.server.settings()))
    assert verifier.verify_token(kit.server.issue_token()).id == "user-1"  # the keys are loaded and work
    return verifier


def test_every_case_has_its_reason() -> None:
    assert set(REASONS) == set(CASES)


def test_control_token_is_accepted(kit: Kit, verifier: Verifier) -> None:
    # The table's builders make valid tokens when they change nothing.
    assert verifier.verify_token(kit.token()).id == "user-1"
    assert verifier.verify_token(sign(kit.claims(), kit.key)).id == "user-1"


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_token_is_401(kit: Kit, verifier: Verifier, name: str, caplog: pytest.LogCaptureFixture) -> None:
    token = CASES[name](kit)
    caplog.set_level(logging.ERROR, logger="flask_authgear")
    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_token(token)
    error = caught.value
    assert type(error).status_code == 401
    assert error.status_code == 401
    assert error.error == "invalid_token"
    # The reason's fixed words (for another audience, with the configured audiences), never the token's.
    accepted = f"{error.reason.description[:-1]}; accepted audiences: {', '.join(verifier.settings.audience)}."
    assert error.description == (accepted if error.reason == "aud" else error.reason.description)
    challenge = error.www_authenticate()
    assert challenge == f'Bearer realm="authgear", error="invalid_token", error_description="{error.description}"'
    assert isinstance(error, TokenError)
    assert error.reason == REASONS[name]
    # No "unexpected error" was logged: every refusal is a rule of ours, not a caught crash.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

    # The whole request path gives the same answer (or 400 for a header that is not a bearer token at all).
    request = bearer_request(token)
    expected: type[Exception] = InvalidRequestError if name in MALFORMED_HEADER else InvalidTokenError
    with pytest.raises(expected):
        verifier.authenticate(request)


#: The answer a developer reads for each common mistake, as the client receives it in ``error_description``.
COMMON_REFUSALS = {
    "expired": "The access token has expired.",
    "nbf-in-future": "The access token is not valid yet.",
    "wrong-aud": "The access token is not meant for this application.",
    "wrong-iss": "The access token is from another issuer.",
    "id-token-typ-JWT": "The token is not an access token.",
    "kid-unknown": "The access token is signed by a key this application does not know.",
    "bad-signature": "The access token signature is invalid.",
    "payload-not-json": "The access token is malformed.",
}


@pytest.mark.parametrize("name", list(COMMON_REFUSALS))
def test_each_common_refusal_answers_its_own_description(kit: Kit, verifier: Verifier, name: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        verifier.authenticate(bearer_request(CASES[name](kit)))
    expected = COMMON_REFUSALS[name]
    if name == "wrong-aud":  # and which audiences are accepted: the configured ones, never the token's
        expected = f"{expected[:-1]}; accepted audiences: {kit.server.endpoint}."
    assert caught.value.to_dict() == {"error": "invalid_token", "error_description": expected}


def test_no_url_from_a_token_is_ever_fetched(kit: Kit, verifier: Verifier) -> None:
    for name in ("jku-header", "x5u-header", "jwk-header"):
        with pytest.raises(InvalidTokenError):
            verifier.verify_token(CASES[name](kit))
    assert (kit.attacker.hits("discovery"), kit.attacker.hits("jwks")) == (0, 0)


def test_refusals_are_not_remembered_as_successes(kit: Kit, verifier: Verifier) -> None:
    token = CASES["bad-signature"](kit)
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            verifier.verify_token(token)


def test_json_nested_beyond_the_recursion_limit_is_401(kit: Kit) -> None:
    verifier = Verifier(Settings(**kit.server.settings(max_header_bytes=65536)))
    token = kit.rs256(js(kit.header()), deep_json(8000))
    assert len(token) < 65536
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request(token))


def test_the_whole_table_costs_at_most_one_key_fetch(kit: Kit) -> None:
    # Past the refetch cooldown, the unknown kids of the table may cause one refetch; nothing else fetches.
    clock = Clock()
    verifier, _ = jwt_verifier(kit.server, clock, jwks_refetch_cooldown=30)
    verifier.verify(kit.server.issue_token())
    before = kit.server.hits("jwks")
    clock.advance(30)
    for build in CASES.values():
        with pytest.raises(InvalidTokenError):
            verifier.verify(build(kit))
    assert kit.server.hits("jwks") - before <= 1
    assert (kit.attacker.hits("discovery"), kit.attacker.hits("jwks")) == (0, 0)


def test_claims_nested_to_the_documented_depth_are_accepted(kit: Kit, verifier: Verifier) -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH - 1):  # the payload object itself is the first level
        value = [value]
    user = verifier.authenticate(bearer_request(kit.server.issue_token(deep=value)))
    assert user.claims["deep"] == (value if isinstance(value, int) else freeze(value))


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600], ids=["one-level-too-deep", "deep-enough-to-recurse"])
def test_a_signed_token_with_claims_nested_too_deep_is_401_malformed(kit: Kit, verifier: Verifier, depth: int) -> None:
    token = kit.rs256(js(kit.header()), js(kit.claims())[:-1] + b',"deep":' + deep_json(depth - 1) + b"}")
    with pytest.raises(TokenError) as caught:
        verifier.verify_token(token)
    assert (caught.value.reason, caught.value.status_code) == ("malformed", 401)
    with pytest.raises(InvalidTokenError):
        verifier.authenticate(bearer_request(token))
