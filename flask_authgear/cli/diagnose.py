"""``verify``, ``resolve`` and ``health``: what Authgear and the library say about a token, a session, an endpoint."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click

from ..core.jose import b64url_decode, json_object
from ..core.jwt import is_machine_token
from ..core.refusals import TokenError
from ..core.resolver import Probe, ResolverClient
from ..core.verifier import Verifier
from ..flask.state import EXTENSION_KEY
from .base import (
    EXIT_ERROR,
    EXIT_NEGATIVE,
    EXIT_OK,
    CommandError,
    cli,
    endpoint_options,
    err,
    flask_app,
    json_option,
    safe,
    settings_for,
)
from .explain import Explanation, config_key, explain_token, utc

__all__: list[str] = []  # the module registers the `verify`, `resolve` and `health` commands on the group

# -- verify ------------------------------------------------------------------------------------------------


@cli.command("verify")
@click.argument("token")
@endpoint_options
@click.option("--audience", multiple=True, help="An accepted aud (repeatable).")
@click.option("--issuer", help="The expected iss (default: the endpoint).")
@click.option("--jwks-uri", help="The JWKS location (default: from discovery).")
@click.option("--leeway", type=float, help="Clock skew allowed, seconds (default 60).")
@click.option("--algorithm", "algorithms", multiple=True, help="An allowed algorithm (default RS256).")
@json_option
@click.pass_context
def _verify(ctx: click.Context, /, token: str, endpoint: str | None, as_json: bool, **options: Any) -> None:
    """Explain a JWT access token and check it exactly as the app would.

    Signature and kid, typ, iss, aud, exp, nbf/iat, user claims. TOKEN '-' reads it from standard input.
    Exit status 0 only when the token is valid.
    """
    token = _read_token(token)
    settings = settings_for(endpoint, **options)
    explanation = explain_token(token, settings)
    if as_json:
        data = explanation.to_dict()
        data["endpoint"] = settings.endpoint
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_render_explanation(explanation, ctx.command))
    if explanation.keys_error is not None:
        if not as_json:
            err(f"cannot fetch the signing keys of {settings.endpoint}: {safe(explanation.keys_error)}")
        ctx.exit(EXIT_ERROR)
    ctx.exit(EXIT_OK if explanation.valid else EXIT_NEGATIVE)


def _render_explanation(explanation: Explanation, command: click.Command | None = None) -> str:
    """The human-readable report: decoded header and claims, the checks, the verdict and how to fix it.

    ``command`` (the ``verify`` command) lets the fix name its option beside the app's setting.
    """
    lines: list[str] = []
    for title, section in (("Header", explanation.header), ("Claims", explanation.claims)):
        if section is None:
            continue
        lines.append(title)
        # Aligned on the longest name (Authgear's claim URLs included); a name longer than any sane claim gets
        # its value on the next line instead of pushing every other value to the right.
        width = max((len(k) for k in section if len(k) <= _MAX_ALIGNED), default=0)
        for name, value in section.items():
            shown = f"{json.dumps(value)}{_time_hint(name, value)}"
            if len(name) > _MAX_ALIGNED:
                lines.extend((f"  {name}", f"  {'':<{width}}  {shown}"))
            else:
                lines.append(f"  {name:<{width}}  {shown}")
    lines.append("Checks")
    width = max((len(c.name) for c in explanation.checks), default=0)
    for check in explanation.checks:
        verdict = {True: "ok", False: "FAIL", None: "-"}[check.ok]
        lines.append(f"  {verdict:<4}  {check.name:<{width}}  {check.detail}")
    reason = explanation.reason
    if explanation.valid and explanation.user is not None:
        user = explanation.user
        lines.append(f"Result: VALID, {f'machine {user.client_id}' if user.is_machine else f'user {user.id}'}")
    elif explanation.keys_error is not None:
        lines.append("Result: UNKNOWN, the signing keys could not be fetched")
    else:
        lines.append(f"Result: INVALID, {explanation.summary}")
        if reason is not None and reason.fix:
            lines.append(f"Fix: {reason.fix}{_setting_hint(reason.setting, command)}")
    return "\n".join(safe(line) for line in lines)


#: Longest header or claim name the report aligns the others on.
_MAX_ALIGNED = 64


def _setting_hint(setting: str | None, command: click.Command | None) -> str:
    """`` (AUTHGEAR_AUDIENCE in the app, --audience here)``: where the setting that fixes a refusal is set."""
    if setting is None:
        return ""
    where = [f"{config_key(setting)} in the app"]
    flags = [p.opts[0] for p in (command.params if command else ()) if p.name == setting and p.opts]
    where.extend(f"{flag} here" for flag in flags)
    return f" ({', '.join(where)})"


def _time_hint(name: str, value: Any) -> str:
    if name in ("exp", "iat", "nbf", "auth_time") and type(value) in (int, float):
        return f"  ({utc(value)})"
    return ""


def _read_token(value: str) -> str:
    """The token itself: ``-`` reads standard input, a ``Bearer`` prefix is dropped."""
    if value == "-":
        value = sys.stdin.readline()
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value:
        raise CommandError("the token is empty")
    if len(value) > 65536:
        raise CommandError("the token is longer than 64 KiB")
    return value


# -- resolve -----------------------------------------------------------------------------------------------


@cli.command("resolve")
@click.option("--token", help="A bearer token (opaque or JWT; '-' reads standard input).")
@click.option("--cookie", help="A Cookie header ('session=...') or a bare session cookie value.")
@endpoint_options
@click.option("--resolver-url", help="The resolver URL (default: ENDPOINT/_resolver/resolve).")
@json_option
@click.pass_context
def _resolve(
    ctx: click.Context, /, token: str | None, cookie: str | None, endpoint: str | None, as_json: bool, **options: Any
) -> None:
    """Show what the resolver endpoint answers for a bearer token or a session cookie.

    Exit status 0 when it reports a valid session.
    """
    if (token is None) == (cookie is None):
        raise click.UsageError("give exactly one of --token and --cookie")
    settings = settings_for(endpoint, **options)
    authorization = None if token is None else f"Bearer {_read_token(token)}"
    if cookie is not None:
        cookie = cookie.strip()
        if cookie.lower().startswith("cookie:"):
            cookie = cookie[len("cookie:") :].strip()
        cookie = cookie if "=" in cookie else f"session={cookie}"
    if not all(value.isprintable() for value in (authorization or "", cookie or "")):
        raise CommandError("the credentials contain characters that cannot be sent in a header")
    machine = token is not None and _is_machine(authorization or "")
    client = ResolverClient(settings)
    try:
        probe = client.probe(authorization, cookie)
    finally:
        client.close()
    if probe.status is None:
        raise CommandError(f"cannot reach the resolver at {probe.url}: {probe.error}")
    if probe.status != 200:
        raise CommandError(
            f"the resolver at {probe.url} answered HTTP {probe.status}; an app in resolver mode answers 503"
        )
    user = probe.answer
    if as_json:
        data = {
            "url": probe.url,
            "status": probe.status,
            "authenticated": user is not None,
            "malformed": probe.error,
            "user": None if user is None else user.to_dict(),
            "headers": probe.headers,
            "clears_cookie": probe.clears_cookie,
            "machine_token": machine,
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_render_probe(probe, machine=machine))
    if probe.error is not None:
        ctx.exit(EXIT_ERROR)
    ctx.exit(EXIT_OK if user is not None else EXIT_NEGATIVE)


def _is_machine(authorization: str) -> bool:
    """Whether the bearer token reads as a machine's (client credentials); unverified, only to explain."""
    parts = authorization.partition(" ")[2].split(".")
    try:
        claims = json_object(b64url_decode(parts[1])) if len(parts) == 3 else None
    except TokenError:
        return False
    return claims is not None and is_machine_token(claims)


#: Why the resolver never vouches for a machine's token.
_MACHINE_HINT = (
    "this is a machine's token (client credentials): Authgear keeps no session for it, so its resolver never "
    "vouches for one and apps in resolver or proxy mode refuse it; verify it locally (jwt or auto mode, "
    "`flask-authgear verify`)"
)


def _render_probe(probe: Probe, *, machine: bool = False) -> str:
    """The resolver's headers and what an app concludes from them."""
    headers: Mapping[str, str] = probe.headers
    lines = [f"GET {probe.url} -> HTTP {probe.status}"]
    if headers:
        width = max(len(name) for name in headers)
        lines.extend(f"  {name:<{width}}  {value}" for name, value in headers.items())
    else:
        lines.append("  (no X-Authgear-* header)")
    user = probe.answer
    if probe.error is not None:
        lines.append(f"Result: MALFORMED, {probe.error}; an app in resolver mode answers 503")
    elif user is not None:
        roles = ", ".join(sorted(user.roles)) or "none"
        lines.append(f"Result: AUTHENTICATED, user {user.id} (roles: {roles})")
    elif any(name.lower() == "x-authgear-session-valid" for name in headers):
        extra = "; the resolver also clears the cookie" if probe.clears_cookie else ""
        lines.append(f"Result: NOT AUTHENTICATED, the session is no longer valid{extra}")
    elif machine:
        lines.append(f"Result: NOT AUTHENTICATED, {_MACHINE_HINT}")
    else:
        lines.append(
            "Result: NOT AUTHENTICATED, no credentials recognised "
            "(an unknown, expired or revoked bearer token gets no X-Authgear-* header at all)"
        )
    return "\n".join(safe(line) for line in lines)


# -- health ------------------------------------------------------------------------------------------------


@cli.command("health")
@endpoint_options
@click.pass_context
def _health(ctx: click.Context, /, endpoint: str | None, **options: Any) -> None:
    """Load the signing keys and print the verifier's health as JSON; exit 1 when not ready."""
    # The app's own verifier only when no option asks for other settings (the rule of settings_for).
    given = any(value not in (None, ()) for value in options.values())
    app = flask_app() if endpoint is None and not given else None
    ext = None if app is None else app.extensions.get(EXTENSION_KEY)
    report: dict[str, Any]
    if app is not None and ext is not None:
        with app.app_context():
            report = ext.health(warm_up=True)
    else:
        verifier = Verifier(settings_for(endpoint, **options))
        try:
            report = verifier.warm_up()
        finally:
            verifier.close()
    click.echo(json.dumps(report, indent=2, default=str))  # JSON escapes control characters
    ctx.exit(EXIT_OK if report.get("ready") else EXIT_NEGATIVE)
