"""``verify``, ``resolve`` and ``health``: what Authgear and the library say about a token, a session, an endpoint."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import click

from ..core.jwt import is_machine_token
from ..core.resolver import Probe, ResolverClient
from ..core.verifier import Verifier
from .base import CommandError, Status, cli, columns, endpoint_options, err, json_option, safe, settings_for
from .explain import MACHINE_ONLY_LOCAL, decode, explain_token

__all__: list[str] = []  # the module registers the `verify`, `resolve` and `health` commands on the group


@cli.command("verify")
@click.argument("token")
@endpoint_options
@click.option("--audience", multiple=True, help="An accepted aud (repeatable).")
@click.option("--issuer", help="The expected iss (default: the endpoint).")
@click.option("--jwks-uri", help="The JWKS location (default: from discovery).")
@click.option("--leeway", type=float, help="Clock skew allowed, seconds (default 60).")
@click.option("--algorithm", "algorithms", multiple=True, help="An allowed algorithm (default RS256).")
@json_option()
@click.pass_context
def _verify(ctx: click.Context, /, token: str, as_json: bool, **options: Any) -> None:
    """Explain a JWT access token and check it exactly as the app would.

    Signature and kid, typ, iss, aud, exp, nbf/iat, user claims. TOKEN '-' reads it from standard input.
    Exit status 0 only when the token is valid.
    """
    token = _read_token(token)
    settings = settings_for(**options)
    explanation = explain_token(token, settings)
    if as_json:
        click.echo(json.dumps({**explanation.to_dict(), "endpoint": settings.endpoint}, indent=2))
    else:
        # The options that try another value of a setting, for the fix to name beside the app's setting.
        flags = {p.name: p.opts[0] for p in ctx.command.params if isinstance(p, click.Option) and p.name}
        click.echo(explanation.to_text(flags))
    if explanation.keys_error is not None:
        if not as_json:
            err(f"cannot fetch the signing keys of {settings.endpoint}: {safe(explanation.keys_error)}")
        ctx.exit(Status.ERROR)
    ctx.exit(Status.OK if explanation.valid else Status.NEGATIVE)


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


@cli.command("resolve")
@click.option("--token", help="A bearer token (opaque or JWT; '-' reads standard input).")
@click.option("--cookie", help="A Cookie header ('session=...') or a bare session cookie value.")
@endpoint_options
@json_option()
@click.pass_context
def _resolve(ctx: click.Context, /, token: str | None, cookie: str | None, as_json: bool, **options: Any) -> None:
    """Show what the resolver endpoint answers for a bearer token or a session cookie.

    Exit status 0 when it reports a valid session.
    """
    if (token is None) == (cookie is None):
        raise click.UsageError("give exactly one of --token and --cookie")
    settings = settings_for(**options)
    token = None if token is None else _read_token(token)
    authorization = None if token is None else f"Bearer {token}"
    if cookie is not None:
        cookie = cookie.strip()
        if cookie.lower().startswith("cookie:"):
            cookie = cookie[len("cookie:") :].strip()
        cookie = cookie if "=" in cookie else f"session={cookie}"
    if not (authorization or cookie or "").isprintable():
        raise CommandError("the credentials contain characters that cannot be sent in a header")
    with contextlib.closing(ResolverClient(settings)) as client:
        probe = client.probe(authorization, cookie)
    if probe.status is None:
        raise CommandError(f"cannot reach the resolver at {probe.url}: {probe.error}")
    if probe.status != 200:
        raise CommandError(
            f"the resolver at {probe.url} answered HTTP {probe.status}; an app in resolver mode answers 503"
        )
    machine = token is not None and _is_machine(token)
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
        click.echo(_render_probe(probe, machine))
    if probe.error is not None:
        ctx.exit(Status.ERROR)
    ctx.exit(Status.OK if user is not None else Status.NEGATIVE)


def _is_machine(token: str) -> bool:
    """Whether the token reads as a machine's (client credentials); unverified, only to explain."""
    try:
        return is_machine_token(decode(token)[1])
    except ValueError:
        return False


def _render_probe(probe: Probe, machine: bool) -> str:
    """The resolver's headers and what an app concludes from them."""
    headers = probe.headers
    lines = [f"GET {probe.url} -> HTTP {probe.status}"]
    lines += columns(headers.items()) or ["  (no X-Authgear-* header)"]
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
        lines.append(f"Result: NOT AUTHENTICATED, this is a machine's token (client credentials): {MACHINE_ONLY_LOCAL}")
    else:
        lines.append(
            "Result: NOT AUTHENTICATED, no credentials recognised "
            "(an unknown, expired or revoked bearer token gets no X-Authgear-* header at all)"
        )
    return "\n".join(safe(line) for line in lines)


@cli.command("health")
@endpoint_options
@click.pass_context
def _health(ctx: click.Context, /, **options: Any) -> None:
    """Load the signing keys and print the verifier's health as JSON; exit 1 when not ready."""
    with contextlib.closing(Verifier(settings_for(**options))) as verifier:  # under 'flask authgear', the app's
        report = verifier.warm_up()
    click.echo(json.dumps(report, indent=2, default=str))  # JSON escapes control characters
    ctx.exit(Status.OK if report.get("ready") else Status.NEGATIVE)
