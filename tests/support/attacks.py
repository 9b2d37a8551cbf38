"""The attack catalogue: every hostile ``Authorization`` header we refuse, crafted from the local server's keys.

Tokens are built by hand (raw JSON, raw base64url, raw signatures) rather than with a JOSE library, because most
attacks are exactly the things a JOSE library refuses to produce. Where an attack is "a token the real key signed
but with a bad claim", it is signed by the server's real key, so only our claim rules can stop it.
"""

from __future__ import annotations

import atexit
import base64
import datetime
import functools
import hashlib
import hmac
import ipaddress
import json
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from flask_authgear.core.refusals import Reason
from flask_authgear.testing.server import AuthgearTestServer

from .jwt import DROP, b64url, edited, unb64url

#: The algorithms the catalogue's verifier allows: Authgear's RS256 plus ES256, so that EC attacks meet a real
#: EC key instead of being refused for their algorithm alone.
ALGORITHMS = ("RS256", "ES256")
EC_KID = "ec-signing-key"
WEAK_RSA_KID = "weak-rsa-1024"
OCT_KID = "shared-hmac-key"
OCT_SECRET = b"a-symmetric-secret-published-by-mistake"


def segment(value: Any) -> str:
    """bytes are encoded as they are, str as UTF-8, anything else as compact JSON."""
    if isinstance(value, bytes):
        return b64url(value)
    if isinstance(value, str):
        return b64url(value.encode("utf-8"))
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def hs(signing_input: bytes, secret: bytes, alg: str = "HS256") -> bytes:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return hmac.new(secret, signing_input, digest).digest()


def flip_last_bit(segment_text: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(segment_text + "=" * (-len(segment_text) % 4)))
    raw[-1] ^= 0x01
    return b64url(bytes(raw))


def self_signed_cert(private: Any, common_name: str, *, ip: str | None = None) -> x509.Certificate:
    """A certificate for ``private``'s public key, signed by itself, valid from yesterday to tomorrow."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ip is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
    return builder.sign(private, hashes.SHA256())


def self_signed_certificate(key: RSAKey) -> bytes:
    """A DER certificate for ``key``, as an attacker would put in ``x5c``."""
    return self_signed_cert(key.private_key, "attacker.example").public_bytes(serialization.Encoding.DER)


#: The refusal of a malformed ``Authorization`` header, before any token rule: a 400 ``invalid_request``.
INVALID_REQUEST = "invalid_request"

#: What may refuse an attack: a token rule of the verifier (a :class:`Reason`, a 401 ``invalid_token``), or the
#: header check (``INVALID_REQUEST``, a 400).
REASONS = frozenset({*Reason, INVALID_REQUEST})


@dataclass(frozen=True)
class Attack:
    """One hostile request: the ``Authorization`` value sent and the rule that must refuse it."""

    id: str
    authorization: str
    #: The rule that must refuse it, from ``REASONS``: pinning the rule keeps each attack aimed at its own check
    #: (a token with a ``jku`` header must fall to the header rule, not to a signature that happens to fail).
    reason: str
    #: Attacker-chosen strings (besides the token itself) that no response may contain.
    markers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"attack {self.id!r}: {self.reason!r} is not a known refusal")

    @property
    def status(self) -> int:
        """400 for a malformed header, 401 for a token refused by one of the verifier's rules."""
        return 400 if self.reason == INVALID_REQUEST else 401

    def probes(self) -> list[str]:
        """Strings that, found in a response, would mean attacker input was echoed."""
        _, _, token = self.authorization.partition(" ")
        out = [token.strip()] if len(token.strip()) >= 8 else []
        out.extend(part for part in token.split(".") if len(part) >= 12)
        out.extend(m for m in self.markers if m)
        return out


class AttackKit:
    """Crafts tokens against ``server`` (the real issuer) with the help of ``attacker`` (another issuer)."""

    def __init__(self, server: AuthgearTestServer, attacker: AuthgearTestServer) -> None:
        self.server = server
        self.attacker = attacker
        self.ec_key = ECKey.generate_key("P-256", parameters={"kid": EC_KID, "use": "sig", "alg": "ES256"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns about the small key, which is the point
            self.weak_key = RSAKey.generate_key(1024, parameters={"kid": WEAK_RSA_KID, "use": "sig", "alg": "RS256"})

    # -- keys the server publishes besides its real one ------------------------------------------------------

    def published_keys(self) -> list[dict[str, Any]]:
        """Extra JWKS entries: a usable EC key, plus a weak RSA key and a symmetric key the policy must ignore."""
        return [
            self.ec_key.as_dict(private=False),
            self.weak_key.as_dict(private=False),
            {"kty": "oct", "kid": OCT_KID, "use": "sig", "alg": "HS256", "k": b64url(OCT_SECRET)},
        ]

    # -- building blocks ------------------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        kid = self.server.signing_key.kid
        assert kid is not None
        return kid

    def header(self, **updates: Any) -> dict[str, Any]:
        return edited({"alg": "RS256", "typ": "at+jwt", "kid": self.kid}, updates)

    def claims(self, sub: str = "attack-victim", **updates: Any) -> dict[str, Any]:
        body = self.server.claims_for("attack-victim" if sub is DROP else sub)
        if sub is DROP:
            del body["sub"]
        return edited(body, updates)

    def sign(self, header_seg: str, payload_seg: str, *, alg: str = "RS256", key: Any = None) -> str:
        signing_input = f"{header_seg}.{payload_seg}".encode("ascii")
        signature = JWSRegistry.algorithms[alg].sign(signing_input, key or self.server.signing_key)
        return f"{header_seg}.{payload_seg}.{b64url(signature)}"

    def token(
        self,
        header: Mapping[str, Any] | bytes | None = None,
        claims: Mapping[str, Any] | bytes | None = None,
        *,
        key: Any = None,
    ) -> str:
        """A compact JWS of ``header`` and ``claims`` (dicts as JSON, bytes as they are), signed with ``key``."""
        head = self.header() if header is None else header
        alg = head.get("alg") if isinstance(head, Mapping) else None
        if alg not in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256"):
            alg = "RS256"  # the header lies about its algorithm or names none: sign with RS256 anyway
        return self.sign(segment(head), segment(self.claims() if claims is None else claims), alg=alg, key=key)

    def hs256(self, secret: bytes, **header: Any) -> str:
        head_seg = segment(self.header(alg="HS256", **header))
        payload_seg = segment(self.claims())
        return f"{head_seg}.{payload_seg}.{b64url(hs(f'{head_seg}.{payload_seg}'.encode(), secret))}"

    def valid(self, sub: str = "attack-victim") -> str:
        return self.token(claims=self.claims(sub))

    def valid_es256(self, sub: str = "attack-victim") -> str:
        return self.token(self.header(alg="ES256", kid=EC_KID), self.claims(sub), key=self.ec_key)

    def raw_claims(self, **literals: str) -> bytes:
        """Claims JSON where the given members are written as raw JSON text (``NaN``, ``1e400`` ...)."""
        base = self.claims(**dict.fromkeys(literals, DROP))
        text = json.dumps(base, separators=(",", ":"))
        extra = ",".join(f'"{name}":{literal}' for name, literal in literals.items())
        return ("{" + extra + "," + text[1:]).encode()

    # -- the catalogue --------------------------------------------------------------------------------------

    def catalogue(self) -> list[Attack]:
        attacks = list(self._build())
        ids = [a.id for a in attacks]
        assert len(ids) == len(set(ids)), "attack ids must be unique"
        return attacks

    def _build(self) -> Iterator[Attack]:
        def attack(aid: str, reason: str, token: str, *markers: str) -> Attack:
            """``token`` sent as a bearer token, to be refused by the rule named ``reason``."""
            return Attack(aid, f"Bearer {token}", reason, markers)

        server, attacker = self.server, self.attacker
        endpoint = server.endpoint
        now = int(time.time())
        valid = self.valid()
        h_seg, p_seg, s_seg = valid.split(".")

        # alg: none, in every casing, with and without a signature.
        for alg in ("none", "None", "NONE", "nOnE", "NoNe"):
            head = segment(self.header(alg=alg))
            yield attack(f"alg-{alg}-empty-signature", "malformed", f"{head}.{p_seg}.")  # an empty segment
            yield attack(f"alg-{alg}-with-signature", "alg", f"{head}.{p_seg}.{s_seg}")
        yield attack("alg-none-no-kid-no-typ", "malformed", f"{segment({'alg': 'none'})}.{p_seg}.")
        yield attack("alg-missing", "alg", self.token(self.header(alg=DROP)))
        yield attack("alg-empty", "alg", f"{segment(self.header(alg=''))}.{p_seg}.{s_seg}")
        yield attack("alg-not-a-string", "alg", f"{segment(self.header(alg=['RS256']))}.{p_seg}.{s_seg}")
        yield attack("alg-ps256-with-rs256-key", "alg", self.token(self.header(alg="PS256")))
        yield attack("alg-rs512-with-rs256-key", "alg", self.token(self.header(alg="RS512")))
        yield attack("alg-rs256-lowercase", "alg", f"{segment(self.header(alg='rs256'))}.{p_seg}.{s_seg}")

        # HS256 signed with the RSA public key in each encoding, and with empty or common secrets.
        public = server.signing_key
        pem = public.as_pem(private=False)
        encodings = {
            "pem": pem,
            "pem-no-final-newline": pem.rstrip(b"\n"),
            "pem-crlf": pem.replace(b"\n", b"\r\n"),
            "der": public.as_der(private=False),
            "jwk-json": json.dumps(public.as_dict(private=False)).encode(),
            "jwk-json-compact": json.dumps(public.as_dict(private=False), separators=(",", ":")).encode(),
            "modulus": base64.urlsafe_b64decode(public.as_dict(private=False)["n"] + "=="),
        }
        for name, secret in encodings.items():
            yield attack(f"hs256-rsa-public-key-{name}", "alg", self.hs256(secret))
        for secret in (b"", b"secret", b"password", b"changeme", b"authgear", b"test-client", endpoint.encode()):
            label = secret.decode() or "empty"
            label = "issuer" if label == endpoint else label
            yield attack(f"hs256-secret-{label}", "alg", self.hs256(secret))
        yield attack("hs256-published-oct-key", "alg", self.hs256(OCT_SECRET, kid=OCT_KID))
        yield attack("hs384-rsa-public-key-pem", "alg", self._hs_other("HS384", pem))
        yield attack("hs512-rsa-public-key-pem", "alg", self._hs_other("HS512", pem))

        # ES256 "psychic signature": r = s = 0, against a real EC key (the signature check refuses it) and against
        # the RSA kid (the key's algorithm does not match).
        for kid_label, kid, reason in (("ec-kid", EC_KID, "signature"), ("rsa-kid", self.kid, "alg")):
            head = segment(self.header(alg="ES256", kid=kid))
            yield attack(f"es256-all-zero-signature-{kid_label}", reason, f"{head}.{p_seg}.{b64url(bytes(64))}")
        head = segment(self.header(alg="ES256", kid=EC_KID))
        yield attack("es256-r-and-s-equal-order", "signature", f"{head}.{p_seg}.{b64url(_P256_ORDER * 2)}")
        yield attack(
            "es256-der-encoded-signature",
            "signature",
            f"{head}.{p_seg}.{b64url(_der_signature(self.ec_key, head, p_seg))}",
        )

        # Attacker keys: embedded, fetched from a URL, or signing under a known kid.
        attacker_key = attacker.signing_key
        attacker_public = attacker_key.as_dict(private=False)
        jwks_url = f"{attacker.endpoint}/oauth2/jwks"
        cert = base64.b64encode(self_signed_certificate(attacker_key)).decode()
        yield attack(
            "jwk-header-attacker-key",
            "header",
            self.token(self.header(kid=DROP, jwk=attacker_public), key=attacker_key),
        )
        yield attack(
            "jwk-header-attacker-key-known-kid",
            "header",
            self.token(self.header(jwk=attacker_public), key=attacker_key),
        )
        yield attack(
            "jwk-header-real-key",
            "header",
            self.token(self.header(jwk=public.as_dict(private=False)), key=attacker_key),
        )
        yield attack(
            "jku-attacker-jwks",
            "header",
            self.token(self.header(kid=attacker_key.kid, jku=jwks_url), key=attacker_key),
            jwks_url,
        )
        yield attack("jku-known-kid", "header", self.token(self.header(jku=jwks_url), key=attacker_key), jwks_url)
        yield attack(
            "x5u-attacker-url",
            "header",
            self.token(self.header(kid=attacker_key.kid, x5u=jwks_url), key=attacker_key),
            jwks_url,
        )
        yield attack("x5c-self-signed", "header", self.token(self.header(kid=DROP, x5c=[cert]), key=attacker_key))
        yield attack("x5c-known-kid", "header", self.token(self.header(x5c=[cert]), key=attacker_key))
        yield attack("attacker-key-known-kid", "signature", self.token(key=attacker_key))
        yield attack(
            "attacker-key-ec-kid", "signature", self.token(self.header(alg="ES256", kid=EC_KID), key=_other_ec_key())
        )
        yield attack("other-project-token", "unknown_kid", attacker.issue_token("attack-victim"))
        yield attack(
            "other-project-token-our-claims",
            "unknown_kid",
            self.token(self.header(kid=attacker_key.kid), key=attacker_key),
        )

        # Hostile kids, signed by the real key so only the kid can be blamed. A string that names no published key
        # is an unknown kid; anything else is not a kid at all.
        unknown_kids: dict[str, str] = {
            "path-traversal": "../../../../etc/passwd",
            "path-traversal-encoded": "..%2f..%2f..%2fetc%2fpasswd",
            "sql": "' OR '1'='1' --",
            "url": jwks_url,
            "crlf": "kid\r\nX-Injected: hostile-header",
            "quote": 'kid" error="injected',
            "nul": "kid\x00hostile",
            "non-ascii": "ключ-hostile",
            "real-kid-with-space": self.kid + " ",
            "real-kid-upper": self.kid.upper(),
        }
        for name, kid in unknown_kids.items():
            yield attack(f"kid-{name}", "unknown_kid", self.token(self.header(kid=kid)), kid)
        invalid_kids: dict[str, Any] = {
            "int": 1234567,
            "null": None,
            "bool": True,
            "list": [self.kid],
            "object": {"kid": self.kid},
            "empty": "",
            "very-long": "k" * 2000,
            "just-over-limit": "k" * 257,
        }
        for name, kid in invalid_kids.items():
            marker = kid if isinstance(kid, str) and len(kid) >= 6 else ""
            yield attack(f"kid-{name}", "kid", self.token(self.header(kid=kid)), marker)
        yield attack("kid-missing", "kid", self.token(self.header(kid=DROP)))
        yield attack("kid-weak-rsa-1024", "unknown_kid", self.token(self.header(kid=WEAK_RSA_KID), key=self.weak_key))
        yield attack("kid-oct-key-rs256", "unknown_kid", self.token(self.header(kid=OCT_KID)))

        # crit and b64.
        crits: dict[str, Any] = {
            "crit-unknown": {"crit": ["urn:example:hostile"], "urn:example:hostile": True},
            "crit-not-a-list": {"crit": "exp"},
            "crit-nested": {"crit": [["exp"]]},
            "crit-empty": {"crit": []},
            "crit-registered-name": {"crit": ["alg"]},
        }
        for name, extra in crits.items():
            yield attack(name, "header", self.token(self.header(**extra)))
        raw_payload = json.dumps(self.claims(), separators=(",", ":"))
        for name, extra in (("b64-false-with-crit", {"b64": False, "crit": ["b64"]}), ("b64-false", {"b64": False})):
            head = segment(self.header(**extra))
            signature = JWSRegistry.algorithms["RS256"].sign(f"{head}.{raw_payload}".encode(), public)
            yield attack(f"{name}-detached", "malformed", f"{head}..{b64url(signature)}")  # an empty payload segment
            yield attack(name, "header", self.token(self.header(**extra)))
        yield attack("zip-deflate", "header", self.token(self.header(zip="DEF")))
        yield attack("enc-member", "header", self.token(self.header(enc="A256GCM")))

        # Headers and payloads that are not JSON objects, nested too deep, or with duplicate members.
        not_objects: dict[str, bytes] = {
            "array": b"[]",
            "string": b'"RS256"',
            "null": b"null",
            "number": b"42",
            "truncated": b'{"alg":"RS256"',
            "invalid-utf8": b'{"alg":"RS256","x":"\xff\xfe"}',
            "utf8-bom": b'\xef\xbb\xbf{"alg":"RS256","typ":"at+jwt"}',
            "empty": b"",
            "single-quotes": b"{'alg':'RS256'}",
            "trailing-garbage": b'{"alg":"RS256"}xyz',
        }
        for name, raw in not_objects.items():
            if raw:
                yield attack(f"header-{name}", "malformed", self.sign(segment(raw), p_seg))
                yield attack(f"payload-{name}", "malformed", self.sign(h_seg, segment(raw)))
        yield attack("header-empty", "malformed", self.sign("", p_seg))
        yield attack("payload-empty", "malformed", self.sign(h_seg, ""))
        head = dict(self.header())
        deep_header = json.dumps(head)[:-1] + ',"x":' + "[" * 1500 + "]" * 1500 + "}"
        yield attack("header-deeply-nested", "malformed", self.sign(segment(deep_header.encode()), p_seg))
        deep_claims = json.dumps(self.claims())[:-1] + ',"x":' + "[" * 2000 + "]" * 2000 + "}"
        yield attack("payload-deeply-nested", "malformed", self.sign(h_seg, segment(deep_claims.encode())))
        deep_objects = json.dumps(self.claims())[:-1] + ',"x":' + '{"":[' * 550 + "]}" * 550 + "}"
        yield attack("payload-deeply-nested-objects", "malformed", self.sign(h_seg, segment(deep_objects.encode())))
        dup = json.dumps(self.header())
        yield attack(
            "header-duplicate-alg", "malformed", self.sign(segment(('{"alg":"none",' + dup[1:]).encode()), p_seg)
        )
        yield attack(
            "header-duplicate-kid", "malformed", self.sign(segment(('{"kid":"other-kid",' + dup[1:]).encode()), p_seg)
        )
        claims_text = json.dumps(self.claims("attack-victim"))
        yield attack(
            "payload-duplicate-sub",
            "malformed",
            self.sign(h_seg, segment(('{"sub":"admin",' + claims_text[1:]).encode())),
        )
        yield attack(
            "payload-duplicate-exp",
            "malformed",
            self.sign(h_seg, segment(('{"exp":9999999999,' + claims_text[1:]).encode())),
        )
        yield attack(
            "payload-duplicate-roles",
            "malformed",
            self.sign(
                h_seg, segment(claims_text[:-1].encode() + b',"https://authgear.com/claims/user/roles":["admin"]}')
            ),
        )

        # exp, nbf, iat.
        # A time in the past is expired; text that strict JSON parsing refuses (non-finite numbers, numbers past
        # Python's limits) is malformed; any other value that is not a usable time is a bad exp.
        exp_literals: dict[str, tuple[str, str]] = {
            "past": (str(now - 3600), "expired"),
            "equal-now": (str(now), "expired"),
            "string": ('"9999999999"', "exp"),
            "bool": ("true", "exp"),
            "null": ("null", "exp"),
            "nan": ("NaN", "malformed"),
            "infinity": ("Infinity", "malformed"),
            "minus-infinity": ("-Infinity", "malformed"),
            "1e400": ("1e400", "malformed"),
            "list": ("[9999999999]", "exp"),
            "object": ('{"t":9999999999}', "exp"),
            "negative": ("-1", "expired"),
            "1e308": ("1e308", "exp"),
            "2-pow-63": (str(2**63), "exp"),
            "4000-digits": ("9" * 4000, "exp"),
            "5000-digits": ("9" * 5000, "malformed"),  # past Python's int parsing limit
        }
        for name, (literal, reason) in exp_literals.items():
            yield attack(f"exp-{name}", reason, self.sign(h_seg, segment(self.raw_claims(exp=literal))))
        yield attack("exp-missing", "exp", self.token(claims=self.claims(exp=DROP)))
        for claim in ("nbf", "iat"):
            yield attack(f"{claim}-future", claim, self.token(claims=self.claims(**{claim: now + 3600})))
            yield attack(f"{claim}-string", claim, self.token(claims=self.claims(**{claim: str(now)})))
            yield attack(f"{claim}-nan", "malformed", self.sign(h_seg, segment(self.raw_claims(**{claim: "NaN"}))))
            yield attack(f"{claim}-1e400", "malformed", self.sign(h_seg, segment(self.raw_claims(**{claim: "1e400"}))))
        yield attack("auth-time-string", "auth_time", self.token(claims=self.claims(auth_time="yesterday")))
        yield attack("auth-time-huge", "auth_time", self.token(claims=self.claims(auth_time=10**20)))
        yield attack("auth-time-negative", "auth_time", self.token(claims=self.claims(auth_time=-(10**14))))
        yield attack("iat-5000-digits", "malformed", self.sign(h_seg, segment(self.raw_claims(iat="9" * 5000))))

        # iss.
        host = endpoint.split("://", 1)[1]
        issuers: dict[str, Any] = {
            "wrong": "https://evil.example",
            "trailing-slash": endpoint + "/",
            "prefix": endpoint[:-1],
            "suffix": endpoint + "0",
            "suffix-path": endpoint + "/evil",
            "other-case": endpoint.upper(),
            "other-scheme": "https://" + host,
            "list": [endpoint],
            "null": None,
            "empty": "",
            "number": 1,
        }
        for name, iss in issuers.items():
            yield attack(f"iss-{name}", "iss", self.token(claims=self.claims(iss=iss)))
        yield attack("iss-missing", "iss", self.token(claims=self.claims(iss=DROP)))

        # aud.
        audiences: dict[str, Any] = {
            "wrong": ["https://evil.example"],
            "wrong-string": "https://evil.example",
            "empty-list": [],
            "empty-string": "",
            "substring": [endpoint[:-1]],
            "superstring": [endpoint + "0"],
            "trailing-slash": [endpoint + "/"],
            "non-string-member": [1],
            "null-member": [None],
            "mixed-members": [endpoint, 1],
            "nested-list": [[endpoint]],
            "object": {"aud": endpoint},
            "null": None,
            "client-id": [server.client_id],
        }
        for name, aud in audiences.items():
            yield attack(f"aud-{name}", "aud", self.token(claims=self.claims(aud=aud)))
        yield attack("aud-missing", "aud", self.token(claims=self.claims(aud=DROP)))

        # sub and typed user claims.
        subs: dict[str, Any] = {"int": 42, "null": None, "empty": "", "list": ["attack-victim"], "object": {"id": "x"}}
        for name, sub in subs.items():
            yield attack(f"sub-{name}", "sub", self.token(claims=self.claims(sub=sub)))
        yield attack("sub-missing", "sub", self.token(claims=self.claims(sub=DROP)))
        yield attack("roles-string", "claim_type", self.token(claims=self.claims(**{_ROLES: "admin"})))
        yield attack("roles-non-string-member", "claim_type", self.token(claims=self.claims(**{_ROLES: ["admin", 1]})))
        yield attack("is-verified-string", "claim_type", self.token(claims=self.claims(**{_VERIFIED: "true"})))

        # typ and ID tokens.
        id_claims = self.claims(aud=server.client_id, nonce="n-0S6_WzA2Mj", at_hash="HK6E_P6Dh8Y93mRNtsDB1Q")
        yield attack("id-token", "typ", self.token(self.header(typ="JWT"), id_claims))
        yield attack("id-token-typ-jwt-our-audience", "typ", self.token(self.header(typ="JWT")))
        yield attack("typ-missing", "typ", self.token(self.header(typ=DROP)))
        yield attack("typ-jose", "typ", self.token(self.header(typ="JOSE")))
        yield attack("typ-not-a-string", "typ", self.token(self.header(typ=["at+jwt"])))
        yield attack("id-token-no-typ-client-audience", "typ", self.token(self.header(typ=DROP), id_claims))

        # Structure: segments, padding, alphabet, flipped bits, truncation, borrowed parts.
        yield attack("segments-1", "malformed", h_seg)
        yield attack("segments-2", "malformed", f"{h_seg}.{p_seg}")
        yield attack("segments-2-trailing-dot", "malformed", f"{h_seg}.{p_seg}.")
        yield attack("segments-4", "malformed", f"{valid}.{s_seg}")
        jwe_head = segment({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": self.kid})
        yield attack(
            "segments-5-jwe",
            "malformed",
            f"{jwe_head}.{b64url(bytes(256))}.{b64url(bytes(12))}.{p_seg}.{b64url(bytes(16))}",
        )
        yield attack("trailing-dot", "malformed", valid + ".")
        yield attack("leading-dot", "malformed", "." + valid)
        yield attack("double-dot", "malformed", f"{h_seg}..{p_seg}.{s_seg}")
        yield attack("padding-on-signature", "malformed", valid + "=" * (-len(s_seg) % 4 or 4))
        yield attack("padding-on-header", INVALID_REQUEST, f"{h_seg}{'=' * (-len(h_seg) % 4 or 4)}.{p_seg}.{s_seg}")
        std = self._standard_alphabet_token()
        yield attack("standard-base64-alphabet", "malformed", std)
        yield attack("signature-bit-flip", "signature", f"{h_seg}.{p_seg}.{flip_last_bit(s_seg)}")
        yield attack("signature-unused-bits", "malformed", f"{h_seg}.{p_seg}.{_with_unused_bits(s_seg)}")
        yield attack("header-bit-flip", "malformed", f"{flip_last_bit(h_seg)}.{p_seg}.{s_seg}")
        yield attack("payload-bit-flip", "malformed", f"{h_seg}.{flip_last_bit(p_seg)}.{s_seg}")
        yield attack("signature-truncated-1", "malformed", valid[:-1])
        yield attack("signature-truncated-3-bytes", "signature", f"{h_seg}.{p_seg}.{b64url(unb64url(s_seg)[:-3])}")
        yield attack("signature-truncated-half", "signature", f"{h_seg}.{p_seg}.{s_seg[:168]}")  # 126 bytes, canonical
        yield attack("token-truncated-half", "malformed", valid[: len(valid) // 2])
        yield attack("signature-empty", "malformed", f"{h_seg}.{p_seg}.")
        yield attack("signature-zero-bytes", "signature", f"{h_seg}.{p_seg}.{b64url(bytes(256))}")
        yield attack("signature-doubled", "signature", f"{h_seg}.{p_seg}.{s_seg}{s_seg}")
        extra_byte = b64url(unb64url(s_seg) + bytes(1))
        yield attack("signature-extra-byte", "signature", f"{h_seg}.{p_seg}.{extra_byte}")
        other = self.valid("someone-else").split(".")
        yield attack("signature-borrowed", "signature", f"{h_seg}.{p_seg}.{other[2]}")
        yield attack("payload-borrowed", "signature", f"{h_seg}.{other[1]}.{s_seg}")
        admin = segment(self.claims("admin", **{_ROLES: ["admin"]}))
        yield attack("payload-swapped-for-admin", "signature", f"{h_seg}.{admin}.{s_seg}")
        yield attack("signature-of-header-only", "signature", f"{h_seg}.{p_seg}.{_sig_of(public, h_seg)}")

        # Size, characters, serialization and the header's own syntax.
        big = segment(self.header(pad="p" * 4500))
        yield attack("header-oversized-within-limit", "signature", self.sign(big, p_seg, key=attacker_key))
        yield attack("token-oversized", INVALID_REQUEST, self.token(claims=self.claims(pad="x" * 9000)))
        yield Attack("authorization-1mb", "Bearer " + "A" * (1024 * 1024), INVALID_REQUEST)
        yield Attack("authorization-64kb-of-dots", "Bearer " + "." * 65536, INVALID_REQUEST)
        yield Attack(
            "non-ascii-token", f"Bearer {h_seg}.{p_seg}{'é'.encode().decode('latin-1')}.{s_seg}", INVALID_REQUEST
        )
        # WSGI hands header values over as latin-1 text: this is how UTF-8 from a client arrives.
        wire = "tökén-hostile".encode().decode("latin-1")
        yield Attack("non-ascii-header-value", f"Bearer {wire}", INVALID_REQUEST, (wire,))
        yield attack(
            "non-ascii-in-json", "unknown_kid", self.token(self.header(kid="ключ-kid-hostile")), "ключ-kid-hostile"
        )
        general = json.dumps({"payload": p_seg, "signatures": [{"protected": h_seg, "signature": s_seg}]})
        flattened = json.dumps({"payload": p_seg, "protected": h_seg, "signature": s_seg})
        yield Attack("json-serialization-general", f"Bearer {general}", INVALID_REQUEST)
        yield Attack("json-serialization-flattened", f"Bearer {flattened}", INVALID_REQUEST)
        yield attack("json-serialization-base64url", "malformed", segment(flattened))
        yield Attack("scheme-basic", "Basic dXNlcjpwYXNzd29yZA==", INVALID_REQUEST)
        yield Attack("scheme-token", f"Token {valid}", INVALID_REQUEST)
        yield Attack("scheme-jwt", f"JWT {valid}", INVALID_REQUEST)
        yield Attack("scheme-only", "Bearer", INVALID_REQUEST)
        yield Attack("scheme-only-space", "Bearer ", INVALID_REQUEST)
        yield Attack("scheme-tab", f"Bearer\t{valid}", INVALID_REQUEST)
        yield Attack("two-tokens", f"Bearer {valid} {valid}", INVALID_REQUEST)
        yield Attack("two-tokens-comma", f"Bearer {valid}, Bearer {valid}", INVALID_REQUEST)
        yield Attack("token-in-quotes", f'Bearer "{valid}"', INVALID_REQUEST)
        yield Attack("token-with-newline", f"Bearer {h_seg}\n.{p_seg}.{s_seg}", INVALID_REQUEST)
        yield Attack("nul-byte", f"Bearer {valid}\x00", INVALID_REQUEST)

        # Keys the JWKS publishes but our key policy refuses.
        yield attack("jwks-rsa-1024-key", "unknown_kid", self.token(self.header(kid=WEAK_RSA_KID), key=self.weak_key))
        yield attack("jwks-oct-key-hs256", "alg", self.hs256(OCT_SECRET, kid=OCT_KID))
        yield attack("jwks-oct-key-empty-alg", "alg", self.hs256(OCT_SECRET, kid=OCT_KID, typ=DROP))

    # -- helpers for single cases ---------------------------------------------------------------------------

    def _hs_other(self, alg: str, secret: bytes) -> str:
        head_seg = segment(self.header(alg=alg))
        payload_seg = segment(self.claims())
        return f"{head_seg}.{payload_seg}.{b64url(hs(f'{head_seg}.{payload_seg}'.encode(), secret, alg))}"

    def _standard_alphabet_token(self) -> str:
        """A valid token re-encoded with ``+`` and ``/``: retried until the encoding actually differs."""
        for attempt in range(50):
            token = self.valid(f"attack-victim-{attempt}")
            std = ".".join(base64.b64encode(unb64url(part)).rstrip(b"=").decode("ascii") for part in token.split("."))
            if std != token:
                return std
        raise AssertionError("could not produce a token whose standard base64 differs")


_ROLES = "https://authgear.com/claims/user/roles"
_VERIFIED = "https://authgear.com/claims/user/is_verified"
_P256_ORDER = bytes.fromhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")


def _with_unused_bits(text: str) -> str:
    """The same bytes spelt differently: set the unused low bits of the last base64 character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(text) % 4, 0)  # bits of the last character that carry no data
    if not unused:
        raise AssertionError("segment length leaves no unused bits")
    index = alphabet.index(text[-1]) | ((1 << unused) - 1)
    return text[:-1] + alphabet[index]


def _sig_of(key: RSAKey, header_seg: str) -> str:
    return b64url(JWSRegistry.algorithms["RS256"].sign(header_seg.encode("ascii"), key))


def _other_ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": EC_KID})


def _der_signature(key: ECKey, header_seg: str, payload_seg: str) -> bytes:
    """A correct ES256 signature in DER (ASN.1) form instead of JOSE's fixed-length r || s."""
    from cryptography.hazmat.primitives.asymmetric import ec

    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return private.sign(f"{header_seg}.{payload_seg}".encode(), ec.ECDSA(hashes.SHA256()))


@functools.cache
def shared_kit() -> AttackKit:
    """One issuer, one attacker and their catalogue for the whole test run.

    The catalogue parametrizes tests, so it must exist at collection time; the servers are daemon threads on
    loopback, stopped when the interpreter exits.
    """
    server = AuthgearTestServer().start()
    attacker = AuthgearTestServer().start()
    atexit.register(attacker.stop)
    atexit.register(server.stop)
    kit = AttackKit(server, attacker)
    server.publish_jwks(kit.published_keys())
    return kit


@functools.cache
def shared_catalogue() -> tuple[Attack, ...]:
    return tuple(shared_kit().catalogue())
