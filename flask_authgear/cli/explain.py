"""Explain a JWT access token in plain words: what it says, and each check the verifier applies to it.

Used by ``flask-authgear verify`` to answer "why is this token rejected?". Nothing is judged here: the verdict
is the answer of a :class:`JWTVerifier`, the class the app runs, built from the same settings (with its token
cache off), and each check line is one of the core's rules applied on its own to the token's header or claims,
so one failure never hides the next. Reasons and their words come from :class:`~flask_authgear.core.refusals.Reason`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config import CONFIG_PREFIX, Settings
from ..core.jose import FORBIDDEN_HEADERS, b64url_decode, json_object
from ..core.jwks import JWKSCache, PublicKey
from ..core.jwt import JWTVerifier, check_auth_time, check_sub, is_machine_token, is_numeric_date
from ..core.refusals import Reason, TokenError
from ..errors import ProviderUnavailableError
from ..user import AuthgearUser

__all__ = ["Check", "Explanation", "config_key", "explain_token", "utc"]

#: ``reason`` when the signing keys could not be fetched: no verdict on the token itself.
_KEYS_UNAVAILABLE = "keys_unavailable"
#: ``reason`` when a machine's valid token meets an app in resolver or proxy mode, and why that refuses it.
_MACHINE_MODE = "machine_mode"
_MACHINE_MODE_MEANING = (
    "a machine's token is verified locally only: Authgear keeps no session for it, so its resolver never vouches "
    "for one and resolver and proxy modes refuse it; use jwt or auto mode"
)


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
    #: Why the verifier refuses the token, when it does.
    reason: Reason | None = None
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    user: AuthgearUser | None = None
    #: Why the signing keys could not be had, when they could not: the endpoint is down or misconfigured.
    keys_error: str | None = None
    #: A valid machine's token that the app's mode (resolver or proxy) refuses all the same.
    machine_mode: bool = False

    @property
    def summary(self) -> str:
        if self.valid:
            return "the token is valid"
        if self.keys_error is not None:
            return "the project's signing keys could not be fetched"
        if self.machine_mode:
            return _MACHINE_MODE_MEANING
        return "the token is invalid" if self.reason is None else self.reason.meaning

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["checks"] = [dataclasses.asdict(c) for c in self.checks]
        data["user"] = None if self.user is None else self.user.to_dict()
        if self.keys_error is not None:
            data["reason"] = _KEYS_UNAVAILABLE
        elif self.machine_mode:
            data["reason"] = _MACHINE_MODE
        reason = self.reason
        if reason is not None and reason.fix:
            data["fix"] = {"text": reason.fix, "setting": config_key(reason.setting)}
        return {**data, "summary": self.summary}


def config_key(setting: str | None) -> str | None:
    """The ``app.config`` key of a :class:`Settings` field (``audience``: ``AUTHGEAR_AUDIENCE``)."""
    return None if setting is None else f"{CONFIG_PREFIX}{setting.upper()}"


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
        out.reason = Reason.MALFORMED
        return out
    header, claims = decoded
    out.header, out.claims = header, claims

    key = _header_checks(header, verifier, out)
    if key is not None:
        checks.append(_signature_check(token, header, key, verifier))
    _claim_checks(claims, verifier, checks, time.time())
    machine = isinstance(claims.get("sub"), str) and is_machine_token(claims)
    checks.append(_machine_check(claims) if machine else _user_check(claims))
    refused_mode = machine and settings.mode in ("resolver", "proxy")
    if refused_mode:
        checks.append(Check("mode", False, f"{settings.mode} mode: {_MACHINE_MODE_MEANING}"))

    if out.keys_error is not None:
        return out
    try:
        out.user = verifier.verify(token)
    except TokenError as exc:
        out.reason = exc.reason
    except ProviderUnavailableError:
        out.keys_error = verifier.jwks.stats.last_error or "the JWKS could not be fetched"
    else:
        out.valid = not refused_mode
        out.machine_mode = refused_mode
    return out


def _refusal(rule: Callable[[], object]) -> Reason | None:
    """The reason one of the core's rules refuses the token for, or None when the rule accepts it."""
    try:
        rule()
    except TokenError as exc:
        return exc.reason
    return None


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
    settings, jws, jwks, checks = verifier.settings, verifier.jws, verifier.jwks, out.checks
    alg = header.get("alg")
    allowed = ", ".join(settings.algorithms)
    if _refusal(lambda: jws.check_alg(header)) is None:
        checks.append(Check("alg", True, f"{alg} is allowed ({allowed})"))
    else:
        checks.append(Check("alg", False, f"{alg!r} is not an allowed algorithm (allowed: {allowed})"))

    if _refusal(lambda: jws.check_members(header)) is None:
        checks.append(Check("header", True, "no member that points at other keys (jwk, jku, x5u, x5c) or crit"))
    else:
        what = ", ".join(sorted(FORBIDDEN_HEADERS.intersection(header)))
        checks.append(Check("header", False, f"refused members: {what} (keys or extensions a token may not bring)"))

    typ = header.get("typ")
    if not settings.require_typ:
        checks.append(Check("typ", None, f"{typ!r}, not checked (require_typ is off)"))
    elif _refusal(lambda: jws.check_typ(header)) is None:
        checks.append(Check("typ", True, f"{typ} (an RFC 9068 access token)"))
    elif typ is None:
        checks.append(Check("typ", False, "missing; access tokens carry typ at+jwt"))
    else:
        hint = ": this looks like an ID token, send the access token instead" if typ == "JWT" else ""
        checks.append(Check("typ", False, f"{typ!r} is not at+jwt{hint}"))

    if _refusal(lambda: jws.check_kid(header)) is not None:
        checks.append(Check("kid", False, "missing or not a short string"))
        return None
    kid = header["kid"]
    try:  # the core's key lookup, which refetches the JWKS for an unknown kid
        key = jwks.get(kid)
    except ProviderUnavailableError:
        out.keys_error = jwks.stats.last_error or "the JWKS could not be fetched"
        checks.append(Check("kid", None, f"{kid}: not checked, the signing keys could not be fetched"))
        return None
    if key is None:
        known = ", ".join(sorted(jwks.keys)) or "none"
        checks.append(Check("kid", False, f"{kid} is not in the project's JWKS (known kids: {known})"))
        return None
    checks.append(Check("kid", True, f"{kid} is in the project's JWKS ({len(jwks.keys)} key(s))"))
    return key


def _signature_check(token: str, header: Mapping[str, Any], key: PublicKey, verifier: JWTVerifier) -> Check:
    reason = _refusal(lambda: verifier.check_header(header))
    if reason is not None:
        return Check("signature", None, f"not checked: {reason.meaning}")
    signing_input, _, signature = token.rpartition(".")
    if verifier.jws.check_signature(header["alg"], signing_input.encode("ascii"), b64url_decode(signature), key):
        return Check("signature", True, f"valid {header['alg']} signature by key {key.kid}")
    return Check("signature", False, f"does not match key {key.kid}: the token was altered or signed by another key")


def _claim_checks(claims: Mapping[str, Any], verifier: JWTVerifier, checks: list[Check], now: float) -> None:
    rules: dict[str, Callable[[], object]] = {
        "iss": lambda: verifier.check_iss(claims),
        "aud": lambda: verifier.check_aud(claims),
        "sub": lambda: check_sub(claims),
        "exp": lambda: verifier.check_exp(claims, now),
        "nbf": lambda: verifier.check_not_future(claims, "nbf", now),
        "iat": lambda: verifier.check_not_future(claims, "iat", now),
        "auth_time": lambda: check_auth_time(claims),
    }
    for name, rule in rules.items():
        ok = _refusal(rule) is None
        if name not in claims:  # the rule itself says whether the claim is required
            checks.append(Check(name, None, "absent (optional)") if ok else Check(name, False, "missing (required)"))
            continue
        detail = _claim_detail(name, claims[name], ok, verifier.settings, now)
        if name == "aud" and not ok and isinstance(claims.get("sub"), str) and is_machine_token(claims):
            detail += ": this machine's token is for the API resource it names; accept it with AUTHGEAR_AUDIENCE"
        checks.append(Check(name, ok, detail))


def _claim_detail(name: str, value: Any, ok: bool, settings: Settings, now: float) -> str:
    if name == "iss":
        if ok:
            return f"{value} is the expected issuer"
        return f"{value!r} is not the expected issuer {settings.issuer!r} (a custom domain?)"
    if name == "aud":
        accepted = ", ".join(settings.audience)
        if ok:
            return f"includes an accepted audience ({accepted})"
        return f"{value!r} holds none of the accepted audiences ({accepted})"
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


def _machine_check(claims: Mapping[str, Any]) -> Check:
    """What a machine's token grants: which client, which API resource, which scopes a route may ask for."""
    scope = claims.get("scope")
    scopes = ", ".join(sorted(scope.split())) if isinstance(scope, str) and scope.strip() else "none"
    aud = claims.get("aud")
    resources = ", ".join(aud) if isinstance(aud, list) else str(aud)
    return Check(
        "machine",
        True,
        f"client {claims['client_id']} (client credentials, not a user) for {resources}; scopes: {scopes}; "
        "accepted only by routes with allow_machine=True, and their scopes=[...] must all be here",
    )


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
