"""The click group behind every door, with what its commands share: options, settings, errors, output."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import ScriptInfo

from .. import __version__
from ..config import Settings
from ..errors import ConfigurationError

__all__ = ["CommandError", "cli", "main"]  # and the helpers the command modules share


class Status(IntEnum):
    """The exit status: a positive answer (a valid token, an authenticated session), a negative one, or an error
    (bad input, an endpoint that cannot be reached)."""

    OK = 0
    NEGATIVE = 1
    ERROR = 2


#: ``ctx.meta`` key set by ``--json``: errors are then also printed as a JSON object on standard output.
_JSON = "flask_authgear.json"

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A failure to report in one line, with exit status 2; or with ``Status.NEGATIVE``, a negative answer that is
    no error of the command (an app that cannot be reached), said without ``error:``."""

    def __init__(self, message: str, status: Status = Status.ERROR) -> None:
        super().__init__(message)
        self.status = status


class _Group(click.Group):
    """Runs a command so that every failure is one line on stderr and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        status = Status.ERROR
        try:
            try:
                with _logging_to_stderr(bool(ctx.params.get("verbose"))):
                    return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a closed pipe shows here, where click handles it
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click reports these; a closed pipe ends quietly with status 1
        except KeyboardInterrupt:
            ctx.exit(130)
        except CommandError as exc:
            message, status = str(exc), exc.status
        except ConfigurationError as exc:
            message = f"bad setting: {exc}"
        except Exception as exc:  # never a traceback for the user
            message = f"unexpected {type(exc).__name__}: {safe(str(exc))}"
        if ctx.meta.get(_JSON):
            click.echo(json.dumps({"error": message}))
        err(f"error: {message}" if status is Status.ERROR else message)
        ctx.exit(status)


@click.group(
    "authgear",
    cls=_Group,
    epilog="Exit status: 0 valid/authenticated, 1 invalid/not authenticated, 2 error.",
)
@click.version_option(__version__, "--version", prog_name="flask-authgear", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Show the library's log records (fetches, failures) on stderr.")
def cli(verbose: bool) -> None:
    """Test and debug apps protected by flask-authgear.

    Under 'flask authgear' the commands use the app's own settings unless --endpoint is given.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script passes it to ``sys.exit``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # help on stderr and status 2, whichever click 8 runs
        click.echo(cli.get_help(click.Context(cli, info_name="flask-authgear")), err=True)
        return Status.ERROR
    try:
        cli.main(args, prog_name="flask-authgear")
    except SystemExit as exc:  # click's standalone mode ends every run with the command's status
        return exc.code if isinstance(exc.code, int) else Status.OK
    return Status.OK


# -- shared options and settings ---------------------------------------------------------------------------


def json_option(text: str = "Print JSON.") -> Callable[[F], F]:
    """``--json``; it also makes a failure print ``{"error": ...}`` on standard output, for scripts."""

    def remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        ctx.meta[_JSON] = value
        return value

    return click.option("--json", "as_json", is_flag=True, callback=remember, help=text)


def endpoint_options(f: F) -> F:
    """``--endpoint`` and ``--timeout``: unset, they leave the app's settings alone. Every other setting is read
    as the app reads it, from its ``AUTHGEAR_*`` environment variable."""
    f = click.option("--timeout", "http_timeout", type=float, help="HTTP deadline in seconds (default 5).")(f)
    return click.option(
        "--endpoint",
        help="The Authgear project origin (default: the app's under 'flask authgear', else $AUTHGEAR_ENDPOINT).",
    )(f)


#: The dev server's state file, for the commands that read it (default: where the dev server writes it).
state_file_option = click.option("--state-file", type=click.Path(path_type=Path), help="The dev server's state file.")


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option callback: the value, when it is an http(s) URL; else a usage error."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL")
    return value


def flask_app() -> Flask | None:
    """The app when running as ``flask authgear``; None for the standalone command."""
    ctx = click.get_current_context(silent=True)
    info = None if ctx is None else ctx.find_object(ScriptInfo)
    return None if info is None else info.load_app()


def settings_for(**options: Any) -> Settings:
    """Settings from the options named after them (unset: None or empty); under ``flask authgear`` without
    --endpoint, the app's own."""
    overrides = {name: value for name, value in options.items() if value not in (None, ())}
    app = None if "endpoint" in overrides else flask_app()
    if app is not None:
        from ..flask.extension import app_settings

        return dataclasses.replace(app_settings(app), **overrides)
    if "endpoint" not in overrides and not os.environ.get("AUTHGEAR_ENDPOINT"):
        raise CommandError("--endpoint is required (or set AUTHGEAR_ENDPOINT), e.g. https://myapp.authgear.cloud")
    # Options win over AUTHGEAR_* environment variables, as keywords do for the extension and the middleware.
    return Settings.load(**overrides)


def first_secret(secrets: str | Sequence[str], source: str) -> tuple[str, str]:
    """The webhook secret that signs, read as the ``webhook_secret`` setting reads it (of several, during a
    rotation, the first), and words that name it by ``source``: never the secret, which logs and scroll-back
    would keep."""
    from ..webhooks.signature import webhook_secrets

    found = webhook_secrets(secrets, source)
    named = f"the first of the {len(found)} secrets in {source}" if len(found) > 1 else f"the secret in {source}"
    return found[0], named


# -- output ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    """Library records go to stderr with ``-v`` only; otherwise the verdict already says what failed (and the
    null handler keeps Python's last-resort handler from printing warnings)."""
    logger = logging.getLogger("flask_authgear")
    level = logger.level
    handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def safe(text: str) -> str:
    """Escape control characters so that text from a token or a server cannot drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def columns(rows: Iterable[tuple[str, str]], widest: int = 64) -> list[str]:
    """Indented name and value columns, aligned on the longest name up to ``widest`` characters: a longer name
    (beyond any sane claim's) stands on its own line, its value below in the column, instead of pushing every
    other value to the right."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows if len(name) <= widest), default=0)
    lines = []
    for name, value in rows:
        if len(name) > widest:
            lines.append(f"  {name}")
            name = ""
        lines.append(f"  {name:<{width}}  {value}")
    return lines


def err(text: str) -> None:
    click.echo(f"flask-authgear: {text}", err=True)
