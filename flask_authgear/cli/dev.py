"""``dev-server`` and ``token``: the local Authgear-compatible server, and tokens minted by it."""

from __future__ import annotations

import functools
import json
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
import requests
from click.core import ParameterSource

from ..webhooks.catalogue import SYNC_HOOK_TIMEOUT
from .base import CommandError, F, cli, flask_app, http_url, json_option, safe, which_secret

__all__ = ["read_state"]


def _user_options(f: F) -> F:
    f = click.option(
        "--expires-in",
        type=float,
        default=3600.0,
        show_default=True,
        help="Token lifetime in seconds; negative gives an expired token.",
    )(f)
    f = click.option("--amr", multiple=True, help="An amr value (repeatable; default pwd).")(f)
    f = click.option("--anonymous", is_flag=True, help="An anonymous user.")(f)
    f = click.option("--unverified", is_flag=True, help="is_verified false.")(f)
    f = click.option("--role", multiple=True, help="A role (repeatable).")(f)
    return click.option("--sub", default="user-1", show_default=True, help="The user id.")(f)


# -- dev-server and token ----------------------------------------------------------------------------------


@cli.command("dev-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
@click.option("--state-file", type=click.Path(path_type=Path), help="Where to record endpoint and mint secret.")
@click.option(
    "--jwt-hook",
    metavar="URL",
    callback=http_url,
    help="Call this oidc.jwt.pre_create webhook before minting, and add the claims it returns.",
)
@click.option(
    "--sync-hook-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=SYNC_HOOK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long the --jwt-hook may take: your project's hook.sync_hook_timeout_seconds (Authgear's default).",
)
@click.option(
    "--webhook-secret",
    envvar="AUTHGEAR_WEBHOOK_SECRET",
    help="The secret that signs events (default: $AUTHGEAR_WEBHOOK_SECRET, else a random one, printed; "
    "a given one is never printed).",
)
@_user_options
@functools.partial(json_option, text="Print one JSON line with endpoint, token and webhook secret.")
def _dev_server(
    host: str,
    port: int,
    state_file: Path | None,
    jwt_hook: str | None,
    sync_hook_timeout: float,
    webhook_secret: str | None,
    as_json: bool,
    **user: Any,
) -> None:
    """Run the local Authgear-compatible server (discovery, JWKS, resolver) in the foreground.

    Point your app at the printed endpoint; mint tokens with 'flask-authgear token'; send webhook events
    signed with the printed secret with 'flask-authgear event'.
    """
    from ..testing.devserver import DevServer, MintError, default_state_file, token_arguments
    from ..testing.events import HookError
    from ..webhooks.signature import webhook_secrets

    params = _user_params(**user)
    try:  # the mint route's own checks, before anything starts
        arguments = token_arguments({**params, "expires_in": user["expires_in"]})
    except MintError as exc:
        raise CommandError(str(exc)) from None
    try:
        server = DevServer(host, port)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    server.jwt_hook = jwt_hook
    server.sync_hook_timeout = sync_hook_timeout
    # A secret the command was given is never printed (terminal scroll-back, CI and supervisor logs keep it):
    # only where it came from. A secret it generated is printed, since the app needs it.
    secret_from = "generated"
    if webhook_secret:
        given = click.get_current_context().get_parameter_source("webhook_secret")
        source = "$AUTHGEAR_WEBHOOK_SECRET" if given is ParameterSource.ENVIRONMENT else "--webhook-secret"
        secrets = webhook_secrets(webhook_secret, source)
        server.webhook_secret = secrets[0]  # of several (a rotation), the first signs
        secret_from = which_secret(secrets, source)
    state_file = state_file or default_state_file()
    try:
        server.start()
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except SystemExit:  # Werkzeug exits when the port is taken
        raise CommandError(f"cannot listen on {host}:{port}: the port is in use") from None

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        try:
            server.write_state(state_file)
        except OSError as exc:
            raise CommandError(f"cannot write the state file {state_file}: {exc.strerror or exc}") from None
        token: str | None = None
        hook_error = ""
        try:
            token = server.issue_token(**arguments)
        except HookError as exc:  # the app may not be running yet: the server is still useful
            hook_error = safe(str(exc))
        if as_json:
            line: dict[str, Any] = {"endpoint": server.endpoint, "token": token, "state_file": str(state_file)}
            line["webhook_secret_from"] = secret_from
            if secret_from == "generated":
                line["webhook_secret"] = server.webhook_secret
            if token is None:
                line["token_error"] = hook_error
            click.echo(json.dumps(line))
        else:
            roles = ", ".join(params.get("roles", ())) or "none"
            click.echo(f"Authgear dev server running at {server.endpoint}")
            click.echo(f"  set AUTHGEAR_ENDPOINT={server.endpoint} in your app (http is accepted on loopback)")
            if secret_from == "generated":
                click.echo(f"  and AUTHGEAR_WEBHOOK_SECRET={server.webhook_secret} to accept its events")
            else:
                click.echo(f"  events are signed with {secret_from}: your app needs it too")
            if jwt_hook:
                click.echo(f"  tokens get the claims of the oidc.jwt.pre_create hook at {jwt_hook}")
            if token is None:
                click.echo(f"  no start-up token: {hook_error}")
            else:
                valid = f"valid {arguments['expires_in']:g} seconds"
                click.echo(f"  a token for {params['sub']} (roles: {roles}), {valid}:")
                click.echo(f"  {token}")
            click.echo("  more tokens: flask-authgear token --sub alice --role admin")
            click.echo("  send an event: flask-authgear event user.created --to URL")
            click.echo(f"  state file: {state_file}")
            click.echo("Press Ctrl+C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


@cli.command("token")
@click.option("--endpoint", help="The dev server's endpoint, checked against the state file (default: the app's).")
@click.option("--state-file", type=click.Path(path_type=Path), help="The dev server's state file.")
@_user_options
@click.option("--claim", multiple=True, metavar="NAME=VALUE", help="An extra claim (VALUE as JSON or text).")
@click.option("--session", is_flag=True, help="Create a resolver session: print its opaque token and cookie.")
@click.option(
    "--machine",
    metavar="CLIENT_ID",
    help="Mint a machine's token (client credentials) instead of a user's; needs --resource.",
)
@click.option("--resource", metavar="URI", help="The API resource a machine's token is for (its aud).")
@click.option("--scope", "scopes", multiple=True, help="A scope of the machine's token (repeatable).")
@json_option
def _token_command(
    endpoint: str | None,
    state_file: Path | None,
    claim: tuple[str, ...],
    session: bool,
    machine: str | None,
    resource: str | None,
    scopes: tuple[str, ...],
    as_json: bool,
    **user: Any,
) -> None:
    """Mint a token from the running dev server, signed with its key.

    The dev server's endpoint and secret are read from its state file (only you can read it). With --machine,
    the token is one Authgear gives a machine-to-machine application for an API resource: aud the --resource,
    sub client_id_CLIENT_ID, the --scope values, no user claims.
    """
    from ..flask.state import app_settings
    from ..testing.devserver import SECRET_HEADER, default_state_file

    state_file = state_file or default_state_file()
    state = read_state(state_file)
    recorded, secret = state["endpoint"], state["secret"]
    app = flask_app() if endpoint is None else None
    expected = endpoint if app is None else app_settings(app).endpoint
    if expected and expected.rstrip("/") != recorded:
        raise CommandError(
            f"the dev server recorded in {state_file} runs at {recorded}, not {expected}; pass its --state-file"
        )
    if machine is not None:
        if session or claim:
            raise CommandError("--machine mints a machine's token: it takes neither --session nor --claim")
        if not resource:
            raise CommandError("--machine needs --resource: the API resource's identifier, the token's aud")
        params: dict[str, Any] = {
            "client_id": machine,
            "resource": resource,
            "scopes": list(scopes),
            "expires_in": user["expires_in"],
        }
        route = "/_dev/machine"
    else:
        if resource or scopes:
            raise CommandError("--resource and --scope describe a machine's token: give --machine CLIENT_ID")
        params = _user_params(**user)
        if not session:
            params["expires_in"] = user["expires_in"]
            params["claims"] = _parse_claims(claim)
        elif claim:
            raise CommandError("--claim applies to JWT tokens, not to --session")
        route = "/_dev/session" if session else "/_dev/token"
    try:
        response = requests.post(
            recorded + route, json=params, headers={SECRET_HEADER: secret}, timeout=5, allow_redirects=False
        )
    except requests.RequestException:
        raise CommandError(
            f"the dev server recorded in {state_file} does not answer at {recorded}; is it still running?"
        ) from None
    answer = _json_answer(response)
    if response.status_code != 200:
        raise CommandError(f"the dev server refused: {safe(str(answer.get('error', response.status_code)))}")
    if as_json:
        click.echo(json.dumps(answer))
    elif session:
        click.echo(f"Authorization: Bearer {answer['token']}")
        click.echo(f"Cookie: {answer['cookie']}")
    else:
        click.echo(str(answer["token"]))


def read_state(path: Path) -> dict[str, Any]:
    """The running dev server's state file: its endpoint, its mint secret, its webhook secret."""
    from ..testing.devserver import read_state

    try:
        return read_state(path)
    except FileNotFoundError:
        raise CommandError(
            f"no running dev server found ({path} is missing); start `flask-authgear dev-server`"
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot read the dev server state file {path}: {exc}") from None
    except ValueError:
        raise CommandError(f"the dev server state file {path} is not one this program wrote") from None


def _user_params(
    sub: str, role: Sequence[str], unverified: bool, anonymous: bool, amr: Sequence[str], **_: Any
) -> dict[str, Any]:
    if not sub:
        raise CommandError("--sub must not be empty")
    return {
        "sub": sub,
        "roles": list(role),
        "is_verified": not unverified,
        "is_anonymous": anonymous,
        "amr": list(amr or ["pwd"]),
    }


def _parse_claims(items: Sequence[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--claim takes NAME=VALUE, got {safe(item)!r}")
        try:
            claims[name] = json.loads(raw)
        except ValueError:
            claims[name] = raw
    return claims


def _json_answer(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
