"""Explain a JWT access token in plain words: what it says, and each check the verifier applies to it.

Used by ``flask-authgear verify`` to answer "why is this token rejected?". The verdict is never computed
here: it is the answer of a :class:`JWTVerifier`, the class the app runs, built from the same settings (with
its token cache off). The per-check lines reuse the core's rules too: each claim is checked by
:meth:`JWTVerifier.check_claims` on a copy of the claims in which every other registered claim is known to be
good, and each header member by :meth:`JWTVerifier.check_header` on a probe without a kid, so one failure never
hides the next.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config import Settings
from ..core.jose import TokenError, b64url_decode, json_object
from ..core.jwks import JWKSCache, PublicKey
from ..core.jwt import JWTVerifier, is_numeric_date
from ..errors import AuthgearError, ProviderUnavailableError
from ..user import AuthgearUser

#: What each verifier ``reason`` means, in words.
REASONS: Mapping[str, str] = {
    "malformed": "the token is not a well-formed compact JWT",
    "alg": "the signing algorithm is not allowed",
    "header": "the header carries a member that could point at other keys or an unsupported extension",
    "typ": "the token is not an access token (typ must be at+jwt)",
    "kid": "the header has no usable kid",
    "unknown_kid": "the key that signed the token is not in the project's JWKS",
    "signature": "the signature does not match",
    "exp": "the exp claim is missing or not a number",
    "expired": "the token has expired",
    "nbf": "the token is not valid yet (nbf)",
    "iat": "the token claims to be issued in the future (iat)",
    "iss": "the issuer is not the expected one",
    "aud": "the audience is not an accepted one",
    "sub": "the sub claim is missing or empty",
    "auth_time": "the auth_time claim is not a valid time",
    "claim_type": "an Authgear user claim has the wrong type",
    "keys_unavailable": "the project's signing keys could not be fetched",
}


@dataclass(frozen=True)
class Check:
    """One rule applied to the token. ``ok`` is None when the rule could not be or need not be applied."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class Explanation:
    """A token taken apart: decoded header and claims, each check, and the verifier's verdict."""

    valid: bool = False
    #: The verifier's short reason when the token is refused (a key of :data:`REASONS`).
    reason: str | None = None
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    user: AuthgearUser | None = None
    #: Why the signing keys could not be had, when they could not: the endpoint is down or misconfigured.
    keys_error: str | None = None

    @property
    def summary(self) -> str:
        if self.valid:
            return "the token is valid"
        if self.reason is None:
            return "the token is invalid"
        return REASONS.get(self.reason, self.reason)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["checks"] = [dataclasses.asdict(c) for c in self.checks]
        data["user"] = None if self.user is None else self.user.to_dict()
        return {**data, "summary": self.summary}


def explain_token(token: str, settings: Settings) -> Explanation:
    """Take ``token`` apart and check it as the app would with ``settings``.

    Fetches discovery and the JWKS. Never raises for a bad token or an unreachable endpoint: the explanation
    says so (``reason`` and ``keys_error``).
    """
    settings = dataclasses.replace(settings, token_cache_size=0)
    verifier = JWTVerifier(settings, JWKSCache(settings))
    out = Explanation()
    checks = out.checks

    decoded = _decode(token, checks)
    if decoded is None:
        out.reason = "malformed"
        return out
    header, claims = decoded
    out.header, out.claims = header, claims

    key = _header_checks(header, verifier, out)
    if key is not None:
        checks.append(_signature_check(token, header, key, verifier))
    _claim_checks(claims, verifier, checks, time.time())
    checks.append(_user_check(claims))

    if out.keys_error is not None:
        out.reason = "keys_unavailable"
        return out
    try:
        out.user = verifier.verify(token)
    except TokenError as exc:
        out.reason = exc.reason
    except ProviderUnavailableError:
        out.reason = "keys_unavailable"
        out.keys_error = verifier.jwks.stats.last_error or "the JWKS could not be fetched"
    except AuthgearError:
        out.reason = "invalid"
    else:
        out.valid = True
    return out


def _decode(token: str, checks: list[Check]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    parts = token.split(".")
    if len(parts) != 3:
        hint = " (an opaque token or a cookie value? try `flask-authgear resolve`)" if len(parts) == 1 else ""
        checks.append(Check("format", False, f"a JWT has 3 parts separated by dots, this has {len(parts)}{hint}"))
        return None
    decoded: list[dict[str, Any]] = []
    for name, segment in zip(("header", "payload", "signature"), parts, strict=True):
        try:
            raw = b64url_decode(segment)
            if name != "signature":
                decoded.append(json_object(raw))
        except TokenError:
            what = "base64url" if name == "signature" else "base64url-encoded JSON object without duplicate members"
            checks.append(Check("format", False, f"the {name} is not a canonical {what}"))
            return None
    checks.append(Check("format", True, "a compact JWS: header, payload and signature decode"))
    return decoded[0], decoded[1]


def _header_checks(header: Mapping[str, Any], verifier: JWTVerifier, out: Explanation) -> PublicKey | None:
    # Header rules are the core's own: check_header on probes without a kid stops before any key lookup,
    # so each probe tells whether the rules before the kid accept one member.
    settings, jwks, checks = verifier.settings, verifier.jwks, out.checks
    good: dict[str, Any] = {"alg": settings.algorithms[0], "typ": "at+jwt"}
    alg = header.get("alg")
    allowed = ", ".join(settings.algorithms)
    if _header_reason(verifier, {**good, "alg": alg}) != "alg":
        checks.append(Check("alg", True, f"{alg} is allowed ({allowed})"))
    else:
        checks.append(Check("alg", False, f"{alg!r} is not an allowed algorithm (allowed: {allowed})"))

    others = [name for name in header if name not in ("alg", "typ", "kid")]
    refused = sorted(n for n in others if _header_reason(verifier, {**good, n: header[n]}) == "header")
    if refused:
        what = ", ".join(refused)
        checks.append(Check("header", False, f"refused members: {what} (keys or extensions a token may not bring)"))
    else:
        checks.append(Check("header", True, "no member that points at other keys (jwk, jku, x5u, x5c) or crit"))

    typ = header.get("typ")
    probe = {**good, "typ": typ} if "typ" in header else {"alg": good["alg"]}
    if not settings.require_typ:
        checks.append(Check("typ", None, f"{typ!r}, not checked (require_typ is off)"))
    elif _header_reason(verifier, probe) != "typ":
        checks.append(Check("typ", True, f"{typ} (an RFC 9068 access token)"))
    elif typ is None:
        checks.append(Check("typ", False, "missing; access tokens carry typ at+jwt"))
    else:
        hint = ": this looks like an ID token, send the access token instead" if typ == "JWT" else ""
        checks.append(Check("typ", False, f"{typ!r} is not at+jwt{hint}"))

    kid = header.get("kid")
    try:  # the core's kid rule, then its key lookup (which refetches the JWKS for an unknown kid)
        if _header_reason(verifier, {**good, "kid": kid}) == "kid":
            checks.append(Check("kid", False, "missing or not a short string"))
            return None
    except ProviderUnavailableError:
        out.keys_error = verifier.jwks.stats.last_error or "the JWKS could not be fetched"
        checks.append(Check("kid", None, f"{kid}: not checked, the signing keys could not be fetched"))
        return None
    key = jwks.keys.get(header["kid"])
    if key is None:
        known = ", ".join(sorted(jwks.keys)) or "none"
        checks.append(Check("kid", False, f"{kid} is not in the project's JWKS (known kids: {known})"))
        return None
    checks.append(Check("kid", True, f"{kid} is in the project's JWKS ({len(jwks.keys)} key(s))"))
    return key


def _header_reason(verifier: JWTVerifier, probe: Mapping[str, Any]) -> str | None:
    """The core's verdict on a header probe that has no kid: the reason of the first rule that fails."""
    try:
        verifier.check_header(probe)
    except TokenError as exc:
        return exc.reason
    return None


def _signature_check(token: str, header: Mapping[str, Any], key: PublicKey, verifier: JWTVerifier) -> Check:
    reason = _header_reason(verifier, header)
    if reason is not None:
        return Check("signature", None, f"not checked: {REASONS[reason]}")
    signing_input, _, signature = token.rpartition(".")
    if verifier.jws.check_signature(header["alg"], signing_input.encode("ascii"), b64url_decode(signature), key):
        return Check("signature", True, f"valid {header['alg']} signature by key {key.kid}")
    return Check("signature", False, f"does not match key {key.kid}: the token was altered or signed by another key")


def _claim_checks(claims: Mapping[str, Any], verifier: JWTVerifier, checks: list[Check], now: float) -> None:
    settings = verifier.settings
    baseline: dict[str, Any] = {
        "exp": now + 3600,
        "iss": settings.issuer,
        "aud": [settings.audience[0]],
        "sub": "subject",
    }
    for name in ("iss", "aud", "sub", "exp", "nbf", "iat", "auth_time"):
        present = name in claims
        if not present and name not in baseline:
            checks.append(Check(name, None, "absent (optional)"))
            continue
        probe = dict(baseline)
        if present:
            probe[name] = claims[name]
        else:
            del probe[name]
        try:
            verifier.check_claims(probe)
            ok = True
        except TokenError:
            ok = False
        checks.append(Check(name, ok, _claim_detail(name, claims.get(name), present, ok, settings, now)))


def _claim_detail(name: str, value: Any, present: bool, ok: bool, settings: Settings, now: float) -> str:
    if not present:
        return "missing (required)"
    if name == "iss":
        if ok:
            return f"{value} is the expected issuer"
        return f"{value!r} is not the expected issuer {settings.issuer!r} (custom domain? set the issuer)"
    if name == "aud":
        accepted = ", ".join(settings.audience)
        if ok:
            return f"includes an accepted audience ({accepted})"
        return f"{value!r} holds none of the accepted audiences ({accepted}); set the audience"
    if name == "sub":
        return f"user id {value}" if ok else "must be a non-empty string"
    if not is_numeric_date(value):
        return f"{value!r} is not a number of seconds"
    when = utc(value)
    leeway = f"{settings.leeway:g}s clock skew allowed"
    if name == "exp":
        if value > now:
            return f"expires {_relative(value - now)} ({when})"
        if ok:
            return f"expired {_relative(now - value, past=True)} ({when}), still inside the {leeway}"
        return f"expired {_relative(now - value, past=True)} ({when}; {leeway})"
    if name == "auth_time":
        return f"authenticated {_relative(now - value, past=True)} ({when})" if ok else f"{value!r} is not a time"
    if value <= now:
        return f"{'issued' if name == 'iat' else 'valid since'} {_relative(now - value, past=True)} ({when})"
    future = f"{_relative(value - now)} ({when})"
    return f"in the future: {future}" + ("" if ok else f", beyond the {leeway}; is a clock wrong?")


def _user_check(claims: Mapping[str, Any]) -> Check:
    # auth_time has its own check line; leave it out so that only the user claims are judged here.
    claims = {name: value for name, value in claims.items() if name != "auth_time"}
    try:
        user = JWTVerifier.to_user(claims) if isinstance(claims.get("sub"), str) else None
    except TokenError:
        return Check("roles", False, "an Authgear user claim (roles, is_verified, is_anonymous, amr) has a wrong type")
    if user is None:
        return Check("roles", None, "not read: no sub")
    roles = ", ".join(sorted(user.roles)) or "none"
    flags = [
        "verified" if user.is_verified else "not verified",
        "anonymous" if user.is_anonymous else "not anonymous",
    ]
    return Check("roles", True, f"roles: {roles}; {', '.join(flags)}")


def utc(value: float) -> str:
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return "out of range"


def _relative(seconds: float, *, past: bool = False) -> str:
    """``3 minutes ago`` / ``in 29 minutes``: coarse, like a person would say it."""
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            break
    else:
        count = int(seconds)
        text = f"{count} second{'s' if count != 1 else ''}"
    return f"{text} ago" if past else f"in {text}"
