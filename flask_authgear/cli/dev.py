"""``dev-server`` and ``token``: the local Authgear-compatible server, and tokens minted by it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import click
import requests
from click.core import ParameterSource

from ..webhooks.catalogue import SYNC_HOOK_TIMEOUT
from .base import CommandError, F, cli, first_secret, flask_app, http_url, json_option, safe, state_file_option

__all__ = ["read_state"]


#: The user a token is for, and its lifetime, named as the mint route names them (``dev-server``, ``token``).
_USER_OPTIONS = [
    click.option("--sub", default="user-1", show_default=True, help="The user id."),
    click.option("--role", "roles", multiple=True, help="A role (repeatable)."),
    click.option("--verified/--unverified", "is_verified", default=True, help="is_verified (default: true)."),
    click.option("--anonymous", "is_anonymous", is_flag=True, help="An anonymous user."),
    click.option("--amr", multiple=True, default=["pwd"], help="An amr value (repeatable; default pwd)."),
    click.option("--expires-in", type=float, default=3600.0, help="Lifetime in seconds (default 3600; < 0: expired)."),
]


def _user_options(f: F) -> F:
    """Adds the user options to a command."""
    for option in reversed(_USER_OPTIONS):
        f = option(f)
    return f


@cli.command("dev-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
@state_file_option
@click.option("--jwt-hook", metavar="URL", callback=http_url, help="An oidc.jwt.pre_create hook to ask before minting.")
@click.option(
    "--sync-hook-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=SYNC_HOOK_TIMEOUT,
    metavar="SECONDS",
    help="How long the hook may take: the project's hook.sync_hook_timeout_seconds (default 5, Authgear's).",
)
@click.option(
    "--webhook-secret",
    envvar="AUTHGEAR_WEBHOOK_SECRET",
    help="Signs events (default: $AUTHGEAR_WEBHOOK_SECRET, else a random one, shown).",
)
@_user_options
@json_option("Print one JSON line with endpoint, token and webhook secret.")
@click.pass_context
def _dev_server(
    ctx: click.Context,
    /,
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
    from ..testing.devserver import DevServer, default_state_file, token_arguments
    from ..testing.events import HookError

    try:  # the mint route's own checks, before anything starts
        arguments = token_arguments({**user, "roles": list(user["roles"]), "amr": list(user["amr"])})
        server = DevServer(host, port)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    server.jwt_hook, server.sync_hook_timeout = jwt_hook, sync_hook_timeout
    # A secret the command was given is never printed (terminal scroll-back, CI and supervisor logs keep it):
    # only where it came from. A secret it generated is printed, since the app needs it.
    secret_from = "generated"
    if webhook_secret:
        from_env = ctx.get_parameter_source("webhook_secret") is ParameterSource.ENVIRONMENT
        source = "$AUTHGEAR_WEBHOOK_SECRET" if from_env else "--webhook-secret"
        server.webhook_secret, secret_from = first_secret(webhook_secret, source)
    state_file = state_file or default_state_file()
    try:
        server.start()
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except SystemExit:  # Werkzeug exits when the port is taken
        raise CommandError(f"cannot listen on {host}:{port}: the port is in use") from None

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl+C does
    try:
        try:
            server.write_state(state_file)
        except OSError as exc:
            raise CommandError(f"cannot write the state file {state_file}: {exc.strerror or exc}") from None
        banner = {"endpoint": server.endpoint, "token": None, "state_file": str(state_file)}
        banner["webhook_secret_from"] = secret_from
        if secret_from == "generated":
            banner["webhook_secret"] = server.webhook_secret
        try:
            banner["token"] = server.issue_token(**arguments)
        except HookError as exc:  # the app may not be running yet: the server is still useful
            banner["token_error"] = safe(str(exc))
        if as_json:
            click.echo(json.dumps(banner))
        else:
            click.echo(f"Authgear dev server running at {server.endpoint}")
            click.echo(f"  set AUTHGEAR_ENDPOINT={server.endpoint} in your app (http is accepted on loopback)")
            if "webhook_secret" in banner:
                click.echo(f"  and AUTHGEAR_WEBHOOK_SECRET={server.webhook_secret} to accept its events")
            else:
                click.echo(f"  events are signed with {secret_from}: your app needs it too")
            if banner["token"] is None:
                click.echo(f"  no start-up token: {banner['token_error']}")
            else:
                roles = ", ".join(arguments["roles"]) or "none"
                valid = f"valid {arguments['expires_in']:g} seconds"
                click.echo(f"  a token for {arguments['sub']} (roles: {roles}), {valid}:\n  {banner['token']}")
            click.echo(f"  state file: {state_file}\nPress Ctrl+C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


@cli.command("token")
@click.option("--endpoint", help="The dev server's endpoint, checked against the state file (default: the app's).")
@state_file_option
@_user_options
@click.option("--claim", multiple=True, metavar="NAME=VALUE", help="An extra claim (VALUE as JSON or text).")
@click.option("--session", is_flag=True, help="Create a resolver session: print its opaque token and cookie.")
@click.option("--machine", metavar="CLIENT_ID", help="Mint a machine's token (client credentials); needs --resource.")
@click.option("--resource", metavar="URI", help="The API resource a machine's token is for (its aud).")
@click.option("--scope", "scopes", multiple=True, help="A scope of the machine's token (repeatable).")
@json_option()
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
    from ..flask.extension import app_settings
    from ..testing.devserver import SECRET_HEADER

    state_file, state = read_state(state_file)
    app = flask_app() if endpoint is None else None
    expected = endpoint if app is None else app_settings(app).endpoint
    if expected and expected.rstrip("/") != state["endpoint"]:
        raise CommandError(
            f"the dev server recorded in {state_file} runs at {state['endpoint']}, not {expected}; "
            "pass its --state-file"
        )
    if machine is not None:
        if session or claim:
            raise CommandError("--machine mints a machine's token: it takes neither --session nor --claim")
        route = "/_dev/machine"
        params = {"client_id": machine, "resource": resource, "scopes": scopes, "expires_in": user["expires_in"]}
    elif resource or scopes:
        raise CommandError("--resource and --scope describe a machine's token: give --machine CLIENT_ID")
    elif session:
        if claim:
            raise CommandError("--claim applies to JWT tokens, not to --session")
        route, params = "/_dev/session", user
    else:
        route, params = "/_dev/token", {**user, "claims": dict(_claim(item) for item in claim)}
    url, headers = state["endpoint"] + route, {SECRET_HEADER: state["secret"]}
    try:  # no redirect: the secret goes to the recorded endpoint only
        response = requests.post(url, json=params, headers=headers, timeout=5, allow_redirects=False)
    except requests.RequestException:
        raise CommandError(
            f"the dev server recorded in {state_file} does not answer at {state['endpoint']}; is it still running?"
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) else response.status_code
        raise CommandError(f"the dev server refused: {safe(str(error))}")
    if as_json:
        click.echo(json.dumps(answer))
    elif session:
        click.echo(f"Authorization: Bearer {answer['token']}\nCookie: {answer['cookie']}")
    else:
        click.echo(str(answer["token"]))


def read_state(path: Path | None, missing: str = "") -> tuple[Path, dict[str, Any]]:
    """The running dev server's state file (by default where it writes it), and what it holds: its endpoint, its
    mint secret, its webhook secret. ``missing`` is the message when there is none."""
    from ..testing.devserver import default_state_file, read_state

    path = path or default_state_file()
    try:
        return path, read_state(path)
    except FileNotFoundError:
        raise CommandError(
            missing or f"no running dev server found ({path} is missing); start `flask-authgear dev-server`"
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot read the dev server state file {path}: {exc}") from None
    except ValueError:
        raise CommandError(f"the dev server state file {path} is not one this program wrote") from None


def _claim(item: str) -> tuple[str, Any]:
    """``--claim NAME=VALUE``: VALUE as JSON when it is JSON, else as text."""
    name, sep, raw = item.partition("=")
    if not sep or not name:
        raise CommandError(f"--claim takes NAME=VALUE, got {safe(item)!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw
