"""``event``: send one signed, Authgear-shaped webhook event to the app, as Authgear would."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import requests

from ..errors import ConfigurationError
from .base import CommandError, Status, cli, first_secret, flask_app, http_url, json_option, safe, state_file_option
from .dev import read_state

__all__: list[str] = []  # the module registers the `event` command on the group

_SECRET_ENV = "AUTHGEAR_WEBHOOK_SECRET"


def _event_type(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..webhooks.catalogue import EVENT_TYPES, check_event_type

    try:
        return check_event_type(value)
    except ConfigurationError as exc:
        raise click.BadParameter(f"{safe(str(exc))}; known types: {', '.join(EVENT_TYPES)}") from None


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """A JSON object given inline or, after ``@``, as a file name."""
    if value is None:
        return None
    try:
        parsed = json.loads(Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {safe(value[1:])}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object")
    return parsed


@cli.command("event")
@click.argument("event_type", metavar="TYPE", callback=_event_type)
@click.option("--to", "url", required=True, metavar="URL", callback=http_url, help="The app's webhook URL.")
@click.option("--payload", metavar="JSON", callback=_json_object, help="JSON or @file.json (default: a sample).")
@click.option("--context", metavar="JSON", callback=_json_object, help="Context entries as JSON, over the defaults.")
@click.option("--secret", help="Default: the app's, else $AUTHGEAR_WEBHOOK_SECRET, else the dev server's.")
@click.option("--id", "event_id", metavar="ID", help="Default: seq in 16 hex digits; the same id again is a replay.")
@state_file_option
@json_option("Print one JSON line: id, status and body of the answer.")
@click.pass_context
def _event_command(
    ctx: click.Context,
    event_type: str,
    url: str,
    payload: dict[str, Any] | None,
    context: dict[str, Any] | None,
    secret: str | None,
    event_id: str | None,
    state_file: Path | None,
    as_json: bool,
) -> None:
    """Send one signed TYPE event to the webhook at --to, and print the app's answer.

    Exit status 0 when the app answers 2xx, 1 otherwise or when it cannot be reached.
    """
    from ..testing.events import EventSender

    signing_secret, secret_from = _signing_secret(secret, state_file)
    # Authgear's seq grows with every event of the project; a new process cannot count, the clock can.
    seq = time.time_ns() // 1000
    event_id = event_id or f"{seq:016x}"  # printed, so that the same event can be sent again
    try:
        answer = EventSender(signing_secret).send_event(url, event_type, payload, context, id=event_id, seq=seq)
    except requests.RequestException as exc:
        why = "no answer in time" if isinstance(exc, requests.Timeout) else "the connection failed"
        raise CommandError(f"cannot reach {safe(url)}: {why}", Status.NEGATIVE) from None
    text = answer.body.decode("utf-8", "replace")
    if as_json:
        body = text if answer.json is None else answer.json
        click.echo(json.dumps({"id": event_id, "status": answer.status, "body": body, "signed_with": secret_from}))
    else:
        if answer.json is not None:
            text = json.dumps(answer.json, indent=2)
        click.echo(f"{event_type} {event_id}: HTTP {answer.status}\nsigned with {secret_from}")
        for line in text.splitlines():
            click.echo(safe(line))
    ctx.exit(Status.OK if answer.ok else Status.NEGATIVE)


def _signing_secret(given: str | None, state_file: Path | None) -> tuple[str, str]:
    """The signing secret and the words that name it (see :func:`first_secret`).

    --secret; else the app's under ``flask authgear`` (read as the app reads its settings: its config, then the
    environment); else $AUTHGEAR_WEBHOOK_SECRET; else the dev server's. An explicit --state-file asks for the
    dev server's.
    """
    if given:
        return first_secret(given, "--secret")
    if state_file is None:
        app = flask_app()
        if app is not None:
            from ..webhooks.flask import app_webhook_secrets

            return first_secret(app_webhook_secrets(app), "the app's webhook_secret setting")
        if os.environ.get(_SECRET_ENV):
            return first_secret(os.environ[_SECRET_ENV], f"${_SECRET_ENV}")
    missing = f"no webhook secret: pass --secret, set {_SECRET_ENV}, or start `flask-authgear dev-server`"
    state_file, state = read_state(state_file, "" if state_file else missing)
    secret = state.get("webhook_secret")
    if not isinstance(secret, str) or not secret:
        raise CommandError(f"the dev server state file {state_file} has no webhook secret; restart the dev server")
    return secret, f"the secret in the dev server's state file {state_file}"
