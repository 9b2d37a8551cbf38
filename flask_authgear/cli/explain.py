"""Explain a JWT access token in plain words: what it says, and each check the verifier applies to it.

Used by ``flask-authgear verify`` to answer "why is this token rejected?". Nothing is judged here: the verdict
is the answer of a :class:`JWTVerifier`, the class the app runs, built from the same settings (with its token
cache off), and each check line is one of the core's rules applied on its own to the token's header or claims,
so one failure never hides the next. A line shows the token's value beside what the settings expect; a broken
rule adds the meaning of its :class:`~flask_authgear.core.refusals.Reason`, the words the core has for it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config import CONFIG_PREFIX, Settings
from ..core.jose import FORBIDDEN_HEADERS, b64url_decode
from ..core.json import loads_object
from ..core.jwks import JWKSCache
from ..core.jwt import JWTVerifier, is_machine_token, is_numeric_date, user_from_claims
from ..core.refusals import Reason, TokenError
from ..errors import ProviderUnavailableError
from .base import columns, safe

__all__ = ["MACHINE_ONLY_LOCAL", "Check", "Explanation", "decode", "explain_token"]

#: ``reason`` when the signing keys could not be fetched: no verdict on the token itself.
KEYS_UNAVAILABLE = "keys_unavailable"
#: ``reason`` when a machine's valid token meets an app in resolver or proxy mode.
MACHINE_MODE = "machine_mode"
#: Why only local verification accepts a machine's token (``verify`` and ``resolve`` say it).
MACHINE_ONLY_LOCAL = (
    "Authgear keeps no session for it, so its resolver never vouches for one and resolver and proxy modes refuse "
    "it; verify it locally (jwt or auto mode)"
)
#: What the verdicts that are not a :class:`Reason` of the core mean.
_VERDICTS = {
    KEYS_UNAVAILABLE: "the project's signing keys could not be fetched",
    MACHINE_MODE: f"a machine's token is verified locally only: {MACHINE_ONLY_LOCAL}",
}
_TIMES = ("exp", "nbf", "iat", "auth_time")


@dataclass(frozen=True)
class Check:
    """One rule applied to the token. ``ok`` is None when the rule could not be or need not be applied."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class Explanation:
    """A token taken apart: decoded header and claims, each check, and the verifier's verdict."""

    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    #: The verifier's user or machine (:meth:`AuthgearUser.to_dict`); also set when the app's mode refuses a valid
    #: machine's token.
    user: dict[str, Any] | None = None
    #: Why the token is refused: a :class:`Reason`, or ``keys_unavailable`` or ``machine_mode``; None when valid.
    reason: str | None = None
    #: Why the signing keys could not be had, when they could not: the endpoint is down or misconfigured.
    keys_error: str | None = None

    @property
    def valid(self) -> bool:
        return self.user is not None and self.reason is None

    @property
    def summary(self) -> str:
        if self.reason is None:
            return "the token is valid"
        return self.reason.meaning if isinstance(self.reason, Reason) else _VERDICTS[self.reason]

    def to_dict(self) -> dict[str, Any]:
        data = {**dataclasses.asdict(self), "valid": self.valid, "summary": self.summary}
        if isinstance(self.reason, Reason) and self.reason.fix:
            data["fix"] = {"text": self.reason.fix, "setting": _config_key(self.reason.setting)}
        return data

    def to_text(self, flags: Mapping[str, str]) -> str:
        """The report: decoded header and claims, the checks, the verdict and how to fix it. ``flags`` maps a
        setting to the option that tries another value of it here (``audience``: ``--audience``)."""
        lines: list[str] = []
        for title, section in (("Header", self.header), ("Claims", self.claims)):
            if section is not None:
                lines += [title, *columns((name, _shown(section, name)) for name in section)]
        verdicts = {True: "ok", False: "FAIL", None: "-"}
        lines += ["Checks", *columns((f"{verdicts[check.ok]:<4}  {check.name}", check.detail) for check in self.checks)]
        if self.valid and self.user is not None:
            who = f"machine {self.user['client_id']}" if self.user["is_machine"] else f"user {self.user['id']}"
            lines.append(f"Result: VALID, {who}")
        elif self.reason == KEYS_UNAVAILABLE:
            lines.append(f"Result: UNKNOWN, {self.summary}")
        else:
            lines.append(f"Result: INVALID, {self.summary}")
            if isinstance(self.reason, Reason) and self.reason.fix:
                setting, fix = self.reason.setting, self.reason.fix
                if setting is not None:
                    flag = f", {flags[setting]} here" if setting in flags else ""
                    fix += f" ({_config_key(setting)} in the app{flag})"
                lines.append(f"Fix: {fix}")
        return "\n".join(safe(line) for line in lines)


def explain_token(token: str, settings: Settings) -> Explanation:
    """Take ``token`` apart and check it as the app would with ``settings``.

    Fetches discovery and the JWKS. Never raises for a bad token or an unreachable endpoint: the explanation
    says so (``reason`` and ``keys_error``).
    """
    settings = dataclasses.replace(settings, token_cache_size=0)
    verifier = JWTVerifier(settings, JWKSCache(settings))
    out = Explanation()
    try:
        header, claims = decode(token)
    except ValueError as exc:
        out.checks.append(Check("format", False, str(exc)))
        out.reason = Reason.MALFORMED
        return out
    out.header, out.claims = header, claims
    out.checks.append(Check("format", True, "a compact JWS: header, payload and signature decode"))
    out.checks += _header_checks(token, header, verifier)
    out.checks += _claim_checks(claims, verifier)
    machine = is_machine_token(claims)
    out.checks.append(_identity_check(claims, machine))
    refused_mode = machine and settings.mode in ("resolver", "proxy")
    if refused_mode:
        out.checks.append(Check("mode", False, f"{settings.mode} mode refuses a machine's token"))
    try:
        out.user = verifier.verify(token).to_dict()
    except TokenError as exc:
        out.reason = exc.reason
    except ProviderUnavailableError:
        out.keys_error = verifier.jwks.stats.last_error or "the JWKS could not be fetched"
        out.reason = KEYS_UNAVAILABLE
    else:
        out.reason = MACHINE_MODE if refused_mode else None
    return out


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified, parsed by the core's strict rules; a ValueError says
    what is malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        hint = " (an opaque token or a cookie value? try `flask-authgear resolve`)" if len(parts) == 1 else ""
        raise ValueError(f"a JWT has 3 parts separated by dots, this has {len(parts)}{hint}")
    decoded: list[dict[str, Any]] = []
    for name, segment in zip(("header", "payload", "signature"), parts, strict=True):
        try:
            raw = b64url_decode(segment)
            if name != "signature":
                decoded.append(loads_object(raw))
        except ValueError:
            what = "base64url" if name == "signature" else "base64url-encoded JSON object without duplicate members"
            raise ValueError(f"the {name} is not a canonical {what}") from None
    return decoded[0], decoded[1]


def _line(name: str, shown: str, reason: Reason | None) -> Check:
    """The line of one of the core's rules: what it read, and the meaning of the ``reason`` it refuses for."""
    return Check(name, reason is None, shown if reason is None else f"{shown}: {reason.meaning}")


def _header_checks(token: str, header: Mapping[str, Any], verifier: JWTVerifier) -> list[Check]:
    """The header rules, then the project's key named by ``kid`` and its signature, when the rules allow them."""
    settings, refused = verifier.settings, verifier.jws.header_refusals(header)
    members = ", ".join(sorted(FORBIDDEN_HEADERS.intersection(header)))
    typ = _shown(header, "typ")
    checks = [
        _line("alg", f"{_shown(header, 'alg')} (allowed: {', '.join(settings.algorithms)})", refused.get("alg")),
        _line("header", members or "no member that points at other keys or names an extension", refused.get("header")),
    ]
    if settings.require_typ:
        checks.append(_line("typ", f"{typ} (expected: at+jwt)", refused.get("typ")))
    else:
        checks.append(Check("typ", None, f"{typ}, not checked (require_typ is off)"))
    if "kid" in refused:
        return [*checks, _line("kid", _shown(header, "kid"), Reason.KID)]
    kid = header["kid"]
    try:  # the core's key lookup, which refetches the JWKS for an unknown kid
        key = verifier.jwks.get(kid)
    except ProviderUnavailableError:  # the verdict says why
        return [*checks, Check("kid", None, f"{kid}: not checked, {_VERDICTS[KEYS_UNAVAILABLE]}")]
    known = f"{_shown(header, 'kid')} (the project's JWKS: {', '.join(sorted(verifier.jwks.keys))})"
    checks.append(_line("kid", known, None if key else Reason.UNKNOWN_KID))
    if key is None:
        return checks
    try:
        verifier.jws.check_header(header)
    except TokenError as exc:
        return [*checks, Check("signature", None, f"not checked: {exc.reason.meaning}")]
    signing_input, _, signature = token.rpartition(".")
    valid = verifier.jws.check_signature(header["alg"], signing_input.encode("ascii"), b64url_decode(signature), key)
    return [*checks, _line("signature", f"{header['alg']} by key {kid}", None if valid else Reason.SIGNATURE)]


def _claim_checks(claims: Mapping[str, Any], verifier: JWTVerifier) -> list[Check]:
    """The registered-claim rules, with what the settings expect of each claim the token has."""
    settings, now = verifier.settings, time.time()
    refused = verifier.claim_refusals(claims, now)
    leeway = f"{settings.leeway:g}s clock skew allowed"
    expected = {
        "iss": f"expected: {settings.issuer}",
        "aud": f"accepted: {', '.join(settings.audience)}",
        **dict.fromkeys(("exp", "nbf", "iat"), leeway),
    }
    checks = []
    for name in ("iss", "aud", "sub", *_TIMES):
        value: Any = claims.get(name)
        if name not in claims and name not in refused:
            checks.append(Check(name, None, "absent (optional)"))
            continue
        shown = _shown(claims, name)
        if name in _TIMES and is_numeric_date(value):
            shown = f"in {_relative(value - now)}" if value > now else f"{_relative(now - value)} ago"
        if name in claims and name in expected:
            shown += f" ({expected[name]})"
        checks.append(_line(name, shown, refused.get(name)))
    return checks


def _identity_check(claims: Mapping[str, Any], machine: bool) -> Check:
    """Who the token is for, as the core reads it: a machine's client, API resource and scopes, or a user's roles
    and flags."""
    if not isinstance(claims.get("sub"), str):
        return Check("roles", None, "not read: no sub")
    try:  # auth_time has its own check line: only the other claims are judged here
        user = user_from_claims({name: value for name, value in claims.items() if name != "auth_time"})
    except TokenError as exc:
        return Check("roles", False, exc.reason.meaning)
    if machine:
        scopes = ", ".join(sorted(user.scopes)) or "none"
        grants = f"client {user.client_id} (client credentials, not a user) for {_shown(claims, 'aud')}"
        return Check("machine", True, f"{grants}; scopes: {scopes}; only routes with allow_machine=True accept it")
    roles = ", ".join(sorted(user.roles)) or "none"
    verified = "verified" if user.is_verified else "not verified"
    anonymous = "anonymous" if user.is_anonymous else "not anonymous"
    return Check("roles", True, f"roles: {roles}; {verified}, {anonymous}")


def _shown(section: Mapping[str, Any], name: str) -> str:
    """A header member or claim of the token as JSON (a time claim with its date), or ``absent``."""
    if name not in section:
        return "absent"
    value = section[name]
    if name in _TIMES and is_numeric_date(value):
        return f"{json.dumps(value)}  ({_utc(value)})"
    return json.dumps(value)


def _config_key(setting: str | None) -> str | None:
    """The ``app.config`` key of a :class:`Settings` field (``audience``: ``AUTHGEAR_AUDIENCE``)."""
    return None if setting is None else f"{CONFIG_PREFIX}{setting.upper()}"


def _utc(value: float) -> str:
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return "out of range"


def _relative(seconds: float) -> str:
    """``3 minutes``: coarse, as a person would say it."""
    count, unit = int(seconds), "second"
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count, unit = int(seconds // size), name
            break
    return f"{count} {unit}{'' if count == 1 else 's'}"
