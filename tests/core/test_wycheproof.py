"""Project Wycheproof vectors (C2SP/wycheproof, Apache-2.0) through our verifier and our JWKS key policy.

The vectors are read at test time from ``$AUTHGEAR_WYCHEPROOF_DIR`` (default: ``../shared/vectors/wycheproof``
beside the repository) and never copied here. Without that folder the tests skip, naming the variable.

* JWS and JWK vectors: the group's key (or key set) is published by the local Authgear-compatible server and
  fetched by a real :class:`~flask_authgear.core.verifier.Verifier`, so keys pass through the same JWKS fetch and
  key policy as production keys. The vectors sign arbitrary payloads (``foo``, empty, binary), not JWT claims, so
  each token is judged at the signature layer (strict compact parsing, header rules, key choice, signature) and,
  separately, the full access-token path must refuse every one of them without an unexpected error.
* RS256, PS256, ES256 (P1363) and Ed25519 signature vectors: the key goes through our key policy
  (:func:`~flask_authgear.core.jwks._parse_jwk`) and the message/signature pair through the verifier's own
  signature check (joserfc's algorithms with the keys our JWKS policy imported). A compact JWS cannot carry
  these messages (its signing input is ``header.payload``), so building tokens from them would not be
  meaningful.

Where we refuse a vector Wycheproof calls valid, the case is listed in ``STRICTER_JWS``, ``STRICTER_JWK`` or
``REFUSED_ACCEPTABLE`` with the reason.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import JoseError

from flask_authgear.config import _ASYMMETRIC_ALGORITHMS, Settings
from flask_authgear.core.jose import b64url_decode
from flask_authgear.core.json import loads_object
from flask_authgear.core.jwks import PublicKey, _parse_jwk
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.core.refusals import TokenError
from flask_authgear.core.verifier import Verifier
from flask_authgear.errors import AuthgearError, InvalidRequestError
from flask_authgear.testing.server import AuthgearTestServer
from tests.support.auth import bearer_request
from tests.support.examples import ROOT

ENV_VAR = "AUTHGEAR_WYCHEPROOF_DIR"
VECTORS = Path(os.environ.get(ENV_VAR) or ROOT.parent / "shared" / "vectors" / "wycheproof")
ALL_ALGORITHMS = tuple(sorted(_ASYMMETRIC_ALGORITHMS))
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")

pytestmark = pytest.mark.skipif(
    not VECTORS.is_dir(), reason=f"Wycheproof vectors not found at {VECTORS}; set {ENV_VAR} to their folder"
)


def load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def jose_cases(name: str) -> list[Any]:
    """(id, key set, token, result) for each test of a JWS or JWK vector file; empty when the folder is absent."""
    if not VECTORS.is_dir():
        return []
    cases = []
    for group in load(name)["testGroups"]:
        private = group["private"]
        keys = private.get("keys", [private])
        public = {"keys": [_public_part(k) for k in keys]}
        for test in group["tests"]:
            case_id = f"{test['tcId']}-{group['comment']}-{test['comment']}"
            cases.append(pytest.param(public, test["jws"], test["result"], test["tcId"], id=case_id))
    return cases


def _public_part(jwk: dict[str, Any]) -> dict[str, Any]:
    """What a JWKS endpoint would publish: the key without its private members (``oct`` keeps ``k``)."""
    return {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}


# Vectors Wycheproof calls valid that we refuse, by file and tcId, with the reason.
_SYMMETRIC = "symmetric (oct/HS*) keys are never verification keys: a public JWKS cannot hold a secret"
STRICTER_JWS: dict[int, str] = {
    1: _SYMMETRIC,
    259: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    264: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    268: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    272: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    320: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    325: "empty payload: a JWT always has a claims payload, and empty segments are malformed",
    346: "the key declares alg PS256 and the token PS384: a key verifies only the algorithm it declares",
    347: "the key declares alg 'ES521', which names no JWS algorithm: the key is unusable, never guessed",
    348: _SYMMETRIC,
    349: "key_ops holds the one member 'sign, verify' (one string, as written in the vector), not 'verify'",
    350: "the key declares alg PS256 and the token PS384: a key verifies only the algorithm it declares",
    351: "the key declares alg 'ES521', which names no JWS algorithm: the key is unusable, never guessed",
    352: _SYMMETRIC,
    357: _SYMMETRIC,
    358: _SYMMETRIC,
    359: _SYMMETRIC,
    372: _SYMMETRIC + "; and a '?' inside a segment is not base64url, which lenient decoders skip",
    373: _SYMMETRIC + "; and a '?' inside a segment is not base64url, which lenient decoders skip",
    376: _SYMMETRIC,
    377: _SYMMETRIC,
}
STRICTER_JWK: dict[int, str] = {
    2: _SYMMETRIC,
    13: _SYMMETRIC,
    14: _SYMMETRIC,
    15: _SYMMETRIC,
}


_VERIFIERS: dict[tuple[int, str], Verifier] = {}


def verifier_for(server: AuthgearTestServer, jwks: dict[str, Any]) -> Verifier:
    """A verifier whose JWKS, fetched over HTTP from the local server, holds exactly the vector's keys.

    One per key set: the tests of a group share it, and it fetches right after its keys were published.
    """
    cache_key = (server.port, json.dumps(jwks, sort_keys=True))
    verifier = _VERIFIERS.get(cache_key)
    if verifier is None:
        server.publish_jwks(jwks["keys"])
        verifier = Verifier(Settings(**server.settings(algorithms=ALL_ALGORITHMS, require_typ=False)))
        verifier.jwks.get("")  # fetch now, while this key set is the one published
        _VERIFIERS[cache_key] = verifier
    return verifier


def signature_layer(verifier: Verifier, token: str) -> bool:
    """The verifier's steps up to and including the signature, without the claim rules.

    Strict compact parsing (three canonical base64url segments, a JSON object header), the header rules and key
    choice of :meth:`JWSVerifier.check_header`, then the configured joserfc algorithm. Returns True only for a
    signature that verifies with a key the policy accepted.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = loads_object(b64url_decode(parts[0]))
        b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
        key: PublicKey = verifier.jwt.jws.check_header(header)
    except (ValueError, TokenError):
        return False
    return check_signature(verifier.jwt, header["alg"], f"{parts[0]}.{parts[1]}".encode("ascii"), signature, key)


def check_signature(jwt: JWTVerifier, alg: str, signing_input: bytes, signature: bytes, key: PublicKey) -> bool:
    """The verifier's own signature check (joserfc's algorithm for every alg), treating a
    signature the algorithm cannot parse as invalid exactly as the verifier does; anything else propagates."""
    try:
        return jwt.jws.check_signature(alg, signing_input, signature, key)
    except (ValueError, TypeError, JoseError):
        return False


def judge(
    server: AuthgearTestServer, jwks: dict[str, Any], token: str, result: str, tc_id: int, stricter: dict[int, str]
) -> None:
    verifier = verifier_for(server, jwks)
    accepted = signature_layer(verifier, token)
    if result == "invalid":
        assert not accepted, "accepted an invalid vector"
    elif tc_id in stricter:
        assert not accepted, f"now accepted; drop it from the stricter list ({stricter[tc_id]})"
    else:
        assert accepted, "refused a valid vector"
    # The full access-token path refuses every vector (none carries JWT claims) through its own checks.
    with pytest.raises(AuthgearError) as caught:
        verifier.verify_token(token)
    assert isinstance(caught.value, TokenError)


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize(("jwks", "token", "result", "tc_id"), jose_cases("json_web_signature_test.json"))
def test_json_web_signature(
    server: AuthgearTestServer, jwks: dict[str, Any], token: Any, result: str, tc_id: int
) -> None:
    if not isinstance(token, str) or token.startswith("{"):
        # JSON serialization is not a b64token, so it cannot even be a bearer credential: 400.
        assert result == "invalid"
        text = token if isinstance(token, str) else json.dumps(token)
        with pytest.raises(InvalidRequestError):
            verifier_for(server, jwks).authenticate(bearer_request(text))
        return
    judge(server, jwks, token, result, tc_id, STRICTER_JWS)


@pytest.mark.usefixtures("no_unexpected_errors")
@pytest.mark.parametrize(("jwks", "token", "result", "tc_id"), jose_cases("json_web_key_test.json"))
def test_json_web_key(server: AuthgearTestServer, jwks: dict[str, Any], token: str, result: str, tc_id: int) -> None:
    judge(server, jwks, token, result, tc_id, STRICTER_JWK)


# -- raw signature vectors ---------------------------------------------------------------------------------------

SIGNATURE_FILES = {
    "rsa_signature_2048_sha256_test.json": "RS256",
    "rsa_signature_3072_sha256_test.json": "RS256",
    "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
    "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
    "ed25519_test.json": "EdDSA",
}
#: "acceptable" vectors (either answer is allowed) that we refuse, with the reason.
REFUSED_ACCEPTABLE = {
    ("rsa_signature_2048_sha256_test.json", 8): "PKCS#1 v1.5 DigestInfo without its NULL parameter is not DER",
    ("rsa_signature_3072_sha256_test.json", 8): "PKCS#1 v1.5 DigestInfo without its NULL parameter is not DER",
}


def _group_jwk(group: dict[str, Any]) -> dict[str, Any]:
    """The group's public key as a JWK; a few P-256 groups give only the point, so build the JWK from it."""
    jwk = group.get("publicKeyJwk") or group.get("keyJwk")
    if jwk is None:
        point = group["publicKey"]
        jwk = {"kty": "EC", "crv": "P-256", "x": _coordinate(point["wx"]), "y": _coordinate(point["wy"])}
    return {**jwk, "kid": "wycheproof"}


def _coordinate(hex_value: str) -> str:
    raw = bytes.fromhex(hex_value).lstrip(b"\x00").rjust(32, b"\x00")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize(("name", "alg"), sorted(SIGNATURE_FILES.items()), ids=sorted(SIGNATURE_FILES))
def test_signature_vectors(name: str, alg: str) -> None:
    """Every key passes our key policy for ``alg``; every verdict of the verifier's check matches the vector's."""
    data = load(name)
    jwt = Verifier(Settings(endpoint="https://wycheproof.example", algorithms=[alg])).jwt
    mismatches: list[str] = []
    checked = 0
    for group in data["testGroups"]:
        key = _parse_jwk(_group_jwk(group), frozenset({alg}))
        assert key is not None, f"key policy refused the key of a {group['type']} group"
        assert alg in key.algorithms
        for test in group["tests"]:
            verdict = check_signature(jwt, alg, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]), key)
            checked += 1
            if test["result"] == "valid" and not verdict:
                mismatches.append(f"{test['tcId']} {test['comment']}: valid vector refused")
            elif test["result"] == "invalid" and verdict:
                mismatches.append(f"{test['tcId']} {test['comment']}: invalid vector accepted")
            elif test["result"] == "acceptable" and not verdict:
                assert (name, test["tcId"]) in REFUSED_ACCEPTABLE
    assert not mismatches
    assert checked == data["numberOfTests"]


def test_vectors_folder_is_complete() -> None:
    """CI must run every file; a missing one is an error, not a skip."""
    for name in (*SIGNATURE_FILES, "json_web_signature_test.json", "json_web_key_test.json"):
        assert (VECTORS / name).is_file(), f"{name} missing from {VECTORS}"
