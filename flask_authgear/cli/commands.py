"""The commands of ``flask-authgear`` and ``flask authgear``; see the package docstring for the exit statuses."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click
import requests
from flask import Flask
from flask.cli import ScriptInfo

from .. import __version__
from ..config import Settings
from ..core.resolver import Probe, ResolverClient
from ..core.verifier import Verifier
from ..errors import ConfigurationError
from .explain import Explanation, explain_token, utc

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_ERROR = 2
#: ``ctx.meta`` key set by ``--json``: errors are then also printed as a JSON object on standard output.
_JSON = "flask_authgear.json"

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A failure to report in one line with exit status 2."""


class _Group(click.Group):
    """Runs a command so that every failure is one line on stderr and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                with _logging_to_stderr(bool(ctx.params.get("verbose"))):
                    return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # What the Python docs recommend: point stdout at devnull so the final flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_NEGATIVE)
        except KeyboardInterrupt:
            ctx.exit(130)
        except CommandError as exc:
            message = str(exc)
        except ConfigurationError as exc:
            message = f"bad setting: {exc}"
        except Exception as exc:  # never a traceback for the user
            message = f"unexpected {type(exc).__name__}: {_safe(str(exc))}"
        if ctx.meta.get(_JSON):
            click.echo(json.dumps({"error": message}))
        _err(f"error: {message}")
        ctx.exit(EXIT_ERROR)


@click.group(
    "authgear",
    cls=_Group,
    epilog="Exit status: 0 valid/authenticated, 1 invalid/not authenticated, 2 error.",
)
@click.version_option(__version__, "--version", prog_name="flask-authgear", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Show the library's log records (fetches, failures) on stderr.")
def cli(verbose: bool) -> None:
    """Test and debug apps protected by flask-authgear.

    Under ``flask authgear`` the commands use the app's own settings unless --endpoint is given.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script passes it to ``sys.exit``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        click.echo(cli.get_help(click.Context(cli, info_name="flask-authgear")), err=True)
        return EXIT_ERROR
    try:
        code = cli.main(args, prog_name="flask-authgear", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 130
    return code if isinstance(code, int) else EXIT_OK


# -- shared options and settings ---------------------------------------------------------------------------


def _json_option(f: F, text: str = "Print JSON.") -> F:
    def remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        ctx.meta[_JSON] = value
        return value

    return click.option("--json", "as_json", is_flag=True, callback=remember, help=text)(f)


def _endpoint_options(f: F) -> F:
    f = click.option(
        "--allow-insecure-http", "insecure", is_flag=True, help="Allow plain http to a non-loopback endpoint."
    )(f)
    f = click.option("--timeout", type=float, help="HTTP deadline in seconds (default 5).")(f)
    return click.option(
        "--endpoint",
        help="The Authgear project origin (default: the app's under `flask authgear`, else $AUTHGEAR_ENDPOINT).",
    )(f)


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


def _flask_app() -> Flask | None:
    """The app when running as ``flask authgear``; None for the standalone command."""
    ctx = click.get_current_context(silent=True)
    info = None if ctx is None else ctx.find_object(ScriptInfo)
    return None if info is None else info.load_app()


def _settings(endpoint: str | None, timeout: float | None, insecure: bool, **overrides: Any) -> Settings:
    """Settings from the options; under ``flask authgear`` without --endpoint, the app's own."""
    if timeout is not None:
        overrides["http_timeout"] = timeout
    if insecure:
        overrides["allow_insecure_http"] = True
    app = _flask_app() if endpoint is None else None
    if app is not None:
        ext = app.extensions.get("authgear")
        settings = getattr(ext, "settings", None)
        if isinstance(settings, Settings):
            return dataclasses.replace(settings, **overrides) if overrides else settings
        return Settings.from_mapping(app.config, **overrides)
    endpoint = endpoint or os.environ.get("AUTHGEAR_ENDPOINT")
    if not endpoint:
        raise CommandError("--endpoint is required (or set AUTHGEAR_ENDPOINT), e.g. https://myapp.authgear.cloud")
    return Settings(endpoint=endpoint, **overrides)


# -- dev-server and token ----------------------------------------------------------------------------------


@cli.command("dev-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
@click.option("--state-file", type=click.Path(path_type=Path), help="Where to record endpoint and mint secret.")
@_user_options
@functools.partial(_json_option, text="Print one JSON line with endpoint and token.")
def dev_server(host: str, port: int, state_file: Path | None, as_json: bool, **user: Any) -> None:
    """Run the local Authgear-compatible server (discovery, JWKS, resolver) in the foreground.

    Point your app at the printed endpoint; mint tokens with `flask-authgear token`.
    """
    from ..testing.devserver import DevServer, default_state_file

    try:
        server = DevServer(host, port)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
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
        params = _user_params(**user)
        expires_in = user["expires_in"]
        token = server.issue_token(**params, expires_in=expires_in)
        if as_json:
            click.echo(json.dumps({"endpoint": server.endpoint, "token": token, "state_file": str(state_file)}))
        else:
            roles = ", ".join(params.get("roles", ())) or "none"
            click.echo(f"Authgear dev server running at {server.endpoint}")
            click.echo(f"  set AUTHGEAR_ENDPOINT={server.endpoint} in your app (http is accepted on loopback)")
            click.echo(f"  a token for {params['sub']} (roles: {roles}), valid {expires_in:g} seconds:")
            click.echo(f"  {token}")
            click.echo("  more tokens: flask-authgear token --sub alice --role admin")
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
@_json_option
def token_command(
    endpoint: str | None, state_file: Path | None, claim: tuple[str, ...], session: bool, as_json: bool, **user: Any
) -> None:
    """Mint a token from the running dev server, signed with its key.

    The dev server's endpoint and secret are read from its state file (only you can read it).
    """
    from ..testing.devserver import SECRET_HEADER, default_state_file

    state_file = state_file or default_state_file()
    recorded, secret = _read_state(state_file)
    app = _flask_app() if endpoint is None else None
    expected = endpoint if app is None else _settings(None, None, False).endpoint
    if expected and expected.rstrip("/") != recorded:
        raise CommandError(
            f"the dev server recorded in {state_file} runs at {recorded}, not {expected}; pass its --state-file"
        )
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
        raise CommandError(f"the dev server refused: {_safe(str(answer.get('error', response.status_code)))}")
    if as_json:
        click.echo(json.dumps(answer))
    elif session:
        click.echo(f"Authorization: Bearer {answer['token']}")
        click.echo(f"Cookie: {answer['cookie']}")
    else:
        click.echo(str(answer["token"]))


def _read_state(path: Path) -> tuple[str, str]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(
            f"no running dev server found ({path} is missing); start `flask-authgear dev-server`"
        ) from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the dev server state file {path}: {exc}") from None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("endpoint"), str)
        or not isinstance(state.get("secret"), str)
    ):
        raise CommandError(f"the dev server state file {path} is not one this program wrote")
    return state["endpoint"], state["secret"]


def _user_params(
    sub: str, role: Sequence[str], unverified: bool, anonymous: bool, amr: Sequence[str], **_: Any
) -> dict[str, Any]:
    if not sub:
        raise CommandError("--sub must not be empty")
    params: dict[str, Any] = {"sub": sub, "roles": list(role)}
    if unverified:
        params["is_verified"] = False
    if anonymous:
        params["is_anonymous"] = True
    if amr:
        params["amr"] = list(amr)
    return params


def _parse_claims(items: Sequence[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--claim takes NAME=VALUE, got {_safe(item)!r}")
        try:
            claims[name] = json.loads(raw)
        except ValueError:
            claims[name] = raw
    return claims


# -- verify ------------------------------------------------------------------------------------------------


@cli.command("verify")
@click.argument("token")
@_endpoint_options
@click.option("--audience", multiple=True, help="An accepted aud (repeatable).")
@click.option("--issuer", help="The expected iss (default: the endpoint).")
@click.option("--jwks-uri", help="The JWKS location (default: from discovery).")
@click.option("--leeway", type=float, help="Clock skew allowed, seconds (default 60).")
@click.option("--algorithm", multiple=True, help="An allowed algorithm (default RS256).")
@_json_option
@click.pass_context
def verify(
    ctx: click.Context,
    token: str,
    endpoint: str | None,
    timeout: float | None,
    insecure: bool,
    audience: tuple[str, ...],
    issuer: str | None,
    jwks_uri: str | None,
    leeway: float | None,
    algorithm: tuple[str, ...],
    as_json: bool,
) -> None:
    """Explain a JWT access token and check it exactly as the app would.

    Signature and kid, typ, iss, aud, exp, nbf/iat, user claims. TOKEN '-' reads it from standard input.
    Exit status 0 only when the token is valid.
    """
    token = _read_token(token)
    overrides: dict[str, Any] = {}
    if audience:
        overrides["audience"] = audience
    if issuer:
        overrides["issuer"] = issuer
    if jwks_uri:
        overrides["jwks_uri"] = jwks_uri
    if leeway is not None:
        overrides["leeway"] = leeway
    if algorithm:
        overrides["algorithms"] = algorithm
    settings = _settings(endpoint, timeout, insecure, **overrides)
    explanation = explain_token(token, settings)
    if as_json:
        data = explanation.to_dict()
        data["endpoint"] = settings.endpoint
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_explanation(explanation))
    if explanation.keys_error is not None:
        if not as_json:
            _err(f"cannot fetch the signing keys of {settings.endpoint}: {_safe(explanation.keys_error)}")
        ctx.exit(EXIT_ERROR)
    ctx.exit(EXIT_OK if explanation.valid else EXIT_NEGATIVE)


def render_explanation(explanation: Explanation) -> str:
    """The human-readable report: decoded header and claims, the checks, the verdict."""
    lines: list[str] = []
    for title, section in (("Header", explanation.header), ("Claims", explanation.claims)):
        if section is None:
            continue
        lines.append(title)
        width = min(max((len(k) for k in section), default=0), 44)
        for name, value in section.items():
            lines.append(f"  {name:<{width}}  {json.dumps(value)}{_time_hint(name, value)}")
    lines.append("Checks")
    width = max((len(c.name) for c in explanation.checks), default=0)
    for check in explanation.checks:
        verdict = {True: "ok", False: "FAIL", None: "-"}[check.ok]
        lines.append(f"  {verdict:<4}  {check.name:<{width}}  {check.detail}")
    if explanation.valid and explanation.user is not None:
        lines.append(f"Result: VALID, user {explanation.user.id}")
    elif explanation.reason == "keys_unavailable":
        lines.append("Result: UNKNOWN, the signing keys could not be fetched")
    else:
        lines.append(f"Result: INVALID, {explanation.summary}")
    return "\n".join(_safe(line) for line in lines)


def _time_hint(name: str, value: Any) -> str:
    if name in ("exp", "iat", "nbf", "auth_time") and type(value) in (int, float):
        return f"  ({utc(value)})"
    return ""


def _read_token(value: str) -> str:
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
@_endpoint_options
@click.option("--resolver-url", help="The resolver URL (default: ENDPOINT/_resolver/resolve).")
@_json_option
@click.pass_context
def resolve(
    ctx: click.Context,
    token: str | None,
    cookie: str | None,
    endpoint: str | None,
    timeout: float | None,
    insecure: bool,
    resolver_url: str | None,
    as_json: bool,
) -> None:
    """Show what the resolver endpoint answers for a bearer token or a session cookie.

    Exit status 0 when it reports a valid session.
    """
    if (token is None) == (cookie is None):
        raise click.UsageError("give exactly one of --token and --cookie")
    overrides = {"resolver_url": resolver_url} if resolver_url else {}
    settings = _settings(endpoint, timeout, insecure, **overrides)
    authorization = None if token is None else f"Bearer {_read_token(token)}"
    if cookie is not None:
        cookie = cookie.strip()
        if cookie.lower().startswith("cookie:"):
            cookie = cookie[len("cookie:") :].strip()
        cookie = cookie if "=" in cookie else f"session={cookie}"
    if not all(value.isprintable() for value in (authorization or "", cookie or "")):
        raise CommandError("the credentials contain characters that cannot be sent in a header")
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
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_probe(probe))
    if probe.error is not None:
        ctx.exit(EXIT_ERROR)
    ctx.exit(EXIT_OK if user is not None else EXIT_NEGATIVE)


def render_probe(probe: Probe) -> str:
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
    else:
        lines.append(
            "Result: NOT AUTHENTICATED, no credentials recognised "
            "(an unknown, expired or revoked bearer token gets no X-Authgear-* header at all)"
        )
    return "\n".join(_safe(line) for line in lines)


# -- health ------------------------------------------------------------------------------------------------


@cli.command("health")
@_endpoint_options
@click.pass_context
def health(ctx: click.Context, endpoint: str | None, timeout: float | None, insecure: bool) -> None:
    """Load the signing keys and print the verifier's health as JSON; exit 1 when not ready."""
    app = _flask_app() if endpoint is None and timeout is None and not insecure else None
    health_of = getattr(None if app is None else app.extensions.get("authgear"), "health", None)
    if callable(health_of):
        report: dict[str, Any] = health_of(warm_up=True)
    else:
        verifier = Verifier(_settings(endpoint, timeout, insecure))
        try:
            report = verifier.warm_up()
        finally:
            verifier.close()
    click.echo(json.dumps(report, indent=2, default=str))  # JSON escapes control characters
    ctx.exit(EXIT_OK if report.get("ready") else EXIT_NEGATIVE)


# -- output ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    """Library records go to stderr with ``-v`` only; otherwise the verdict already says what failed."""
    logger = logging.getLogger("flask_authgear")
    level = logger.level
    if verbose:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _safe(text: str) -> str:
    """Escape control characters so that text from a token or a server cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _err(text: str) -> None:
    click.echo(f"flask-authgear: {text}", err=True)


def _json_answer(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
