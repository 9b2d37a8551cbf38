"""The ``flask-authgear`` command line (also ``python -m flask_authgear`` and ``flask authgear ...``).

* ``dev-server``: the local Authgear-compatible server in the foreground, for offline development.
* ``token``: mint a token (or a resolver session) from the running dev server.
* ``verify``: explain a JWT access token, check by check; exit status 0 only when it is valid.
* ``resolve``: ask a resolver endpoint about a bearer token or a session cookie.

Exit status: 0 success (valid token, authenticated session), 1 a negative answer (invalid token, no
session), 2 a usage error or an endpoint that cannot be reached. Errors are one readable line, never a
traceback. Everything a token or a server says is printed with control characters escaped, so a crafted
token cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

import click
import requests
from flask import current_app
from flask.cli import AppGroup

from .config import Settings
from .core.explain import Explanation, _utc, explain_token
from .core.headers import MalformedAnswer, answer_headers, parse_answer
from .core.verifier import Verifier
from .errors import ConfigurationError

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_ERROR = 2


class CommandError(Exception):
    """A failure to report in one line with exit status 2."""


class _ClickError(click.ClickException):
    """``flask authgear`` errors exit with status 2 like the standalone command's."""

    exit_code = EXIT_ERROR


# -- entry points ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(_attach_credential_values(sys.argv[1:] if argv is None else argv))
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with _logging_to_stderr(args.verbose):
            return handler(args)
    except CommandError as exc:
        return _fail(str(exc), getattr(args, "json", False))
    except ConfigurationError as exc:
        return _fail(f"bad setting: {exc}", getattr(args, "json", False))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for the user
        return _fail(f"unexpected {type(exc).__name__}: {_safe(str(exc))}", getattr(args, "json", False))


#: Options whose value is a credential: base64url text, which may well begin with "-".
_CREDENTIAL_OPTIONS = ("--token", "--cookie")


def _attach_credential_values(argv: Sequence[str]) -> list[str]:
    """``--token VALUE`` as ``--token=VALUE``: argparse would take a value starting with "-" for an option."""
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            out.append(item)
            out.extend(items)
            break
        if item in _CREDENTIAL_OPTIONS:
            value = next(items, None)
            out.append(item if value is None else f"{item}={value}")
        else:
            out.append(item)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flask-authgear",
        description="Test and debug apps protected by flask-authgear.",
        epilog="Exit status: 0 valid/authenticated, 1 invalid/not authenticated, 2 error.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the library's log records (fetches, failures) on stderr"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    dev = commands.add_parser(
        "dev-server",
        help="run a local Authgear-compatible server for offline development",
        description="Run the local Authgear-compatible server (discovery, JWKS, resolver) in the foreground. "
        "Point your app at the printed endpoint; mint tokens with `flask-authgear token`.",
    )
    dev.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    dev.add_argument("--state-file", type=Path, help="where to record endpoint and mint secret")
    _add_user_options(dev, default_expires=3600)
    dev.add_argument("--json", action="store_true", help="print one JSON line with endpoint and token")
    dev.set_defaults(handler=cmd_dev_server)

    token = commands.add_parser(
        "token",
        help="mint a token from the running dev server",
        description="Ask the running `flask-authgear dev-server` for a token signed with its key. The dev "
        "server's endpoint and secret are read from its state file (only you can read it).",
    )
    token.add_argument("--endpoint", help="the dev server's endpoint (checked against the state file)")
    token.add_argument("--state-file", type=Path, help="the dev server's state file")
    _add_user_options(token, default_expires=3600)
    token.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE", help="an extra claim (VALUE as JSON or text)"
    )
    token.add_argument(
        "--session", action="store_true", help="create a resolver session: print its opaque token and cookie"
    )
    token.add_argument("--json", action="store_true", help="print JSON")
    token.set_defaults(handler=cmd_token)

    verify = commands.add_parser(
        "verify",
        help="explain a JWT access token and each check",
        description="Decode a JWT access token and check it exactly as the app would: signature and kid, "
        "typ, iss, aud, exp, nbf/iat, user claims. Exit status 0 only when the token is valid.",
    )
    verify.add_argument("token", metavar="TOKEN", help="the access token ('-' reads it from standard input)")
    _add_endpoint_options(verify)
    verify.add_argument("--audience", action="append", default=[], help="an accepted aud (repeatable)")
    verify.add_argument("--issuer", help="the expected iss (default: the endpoint)")
    verify.add_argument("--jwks-uri", help="the JWKS location (default: from discovery)")
    verify.add_argument("--leeway", type=float, default=60.0, help="clock skew allowed, seconds (default 60)")
    verify.add_argument("--algorithm", action="append", default=[], help="an allowed algorithm (default RS256)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=cmd_verify)

    resolve = commands.add_parser(
        "resolve",
        help="show what the resolver answers for a token or a cookie",
        description="Call the Authgear resolver endpoint with a bearer token or a session cookie and show its "
        "answer. Exit status 0 when it reports a valid session.",
    )
    credentials = resolve.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--token", help="a bearer token (opaque or JWT; '-' reads standard input)")
    credentials.add_argument("--cookie", help="a Cookie header ('session=...') or a bare session cookie value")
    _add_endpoint_options(resolve)
    resolve.add_argument("--resolver-url", help="the resolver URL (default: ENDPOINT/_resolver/resolve)")
    resolve.add_argument("--json", action="store_true", help="print JSON")
    resolve.set_defaults(handler=cmd_resolve)
    return parser


def _add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("AUTHGEAR_ENDPOINT"),
        help="the Authgear project origin (default: $AUTHGEAR_ENDPOINT)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="HTTP deadline in seconds (default 5)")
    parser.add_argument(
        "--allow-insecure-http", action="store_true", help="allow plain http to a non-loopback endpoint"
    )


def _add_user_options(parser: argparse.ArgumentParser, *, default_expires: float) -> None:
    parser.add_argument("--sub", default="user-1", help="the user id (default user-1)")
    parser.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    parser.add_argument("--unverified", action="store_true", help="is_verified false")
    parser.add_argument("--anonymous", action="store_true", help="an anonymous user")
    parser.add_argument("--amr", action="append", help="an amr value (repeatable; default pwd)")
    parser.add_argument(
        "--expires-in",
        type=float,
        default=default_expires,
        help=f"token lifetime in seconds; negative gives an expired token (default {default_expires:g})",
    )


# -- dev-server and token ----------------------------------------------------------------------------------


def cmd_dev_server(args: argparse.Namespace) -> int:
    from .testing.devserver import DevServer, default_state_file

    try:
        server = DevServer(args.host, args.port)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    state_file: Path = args.state_file or default_state_file()
    try:
        server.start()
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except SystemExit:  # Werkzeug exits when the port is taken
        raise CommandError(f"cannot listen on {args.host}:{args.port}: the port is in use") from None

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        try:
            server.write_state(state_file)
        except OSError as exc:
            raise CommandError(f"cannot write the state file {state_file}: {exc.strerror or exc}") from None
        user = _user_params(args)
        token = server.issue_token(**user, expires_in=args.expires_in)
        if args.json:
            _out(json.dumps({"endpoint": server.endpoint, "token": token, "state_file": str(state_file)}))
        else:
            roles = ", ".join(user.get("roles", ())) or "none"
            _out(f"Authgear dev server running at {server.endpoint}")
            _out(f"  set AUTHGEAR_ENDPOINT={server.endpoint} in your app (http is accepted on loopback)")
            _out(f"  a token for {user['sub']} (roles: {roles}), valid {args.expires_in:g} seconds:")
            _out(f"  {token}")
            _out("  more tokens: flask-authgear token --sub alice --role admin")
            _out(f"  state file: {state_file}")
            _out("Press Ctrl+C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def cmd_token(args: argparse.Namespace) -> int:
    from .testing.devserver import SECRET_HEADER, default_state_file

    state_file: Path = args.state_file or default_state_file()
    endpoint, secret = _read_state(state_file)
    if args.endpoint and args.endpoint.rstrip("/") != endpoint:
        raise CommandError(
            f"the dev server recorded in {state_file} runs at {endpoint}, not {args.endpoint}; pass its --state-file"
        )
    params: dict[str, Any] = _user_params(args)
    route = "/_dev/session" if args.session else "/_dev/token"
    if not args.session:
        params["expires_in"] = args.expires_in
        params["claims"] = _parse_claims(args.claim)
    elif args.claim:
        raise CommandError("--claim applies to JWT tokens, not to --session")
    try:
        response = requests.post(
            endpoint + route, json=params, headers={SECRET_HEADER: secret}, timeout=5, allow_redirects=False
        )
    except requests.RequestException:
        raise CommandError(
            f"the dev server recorded in {state_file} does not answer at {endpoint}; is it still running?"
        ) from None
    answer = _json_answer(response)
    if response.status_code != 200:
        raise CommandError(f"the dev server refused: {_safe(str(answer.get('error', response.status_code)))}")
    if args.json:
        _out(json.dumps(answer))
    elif args.session:
        _out(f"Authorization: Bearer {answer['token']}")
        _out(f"Cookie: {answer['cookie']}")
    else:
        _out(str(answer["token"]))
    return EXIT_OK


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


def _user_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"sub": args.sub, "roles": list(args.role)}
    if not args.sub:
        raise CommandError("--sub must not be empty")
    if args.unverified:
        params["is_verified"] = False
    if args.anonymous:
        params["is_anonymous"] = True
    if args.amr:
        params["amr"] = list(args.amr)
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


def cmd_verify(args: argparse.Namespace) -> int:
    token = _read_token(args.token)
    overrides: dict[str, Any] = {"leeway": args.leeway}
    if args.audience:
        overrides["audience"] = tuple(args.audience)
    if args.issuer:
        overrides["issuer"] = args.issuer
    if args.jwks_uri:
        overrides["jwks_uri"] = args.jwks_uri
    if args.algorithm:
        overrides["algorithms"] = tuple(args.algorithm)
    settings = _settings(args, **overrides)
    return report_explanation(explain_token(token, settings), settings, as_json=args.json)


def report_explanation(
    explanation: Explanation, settings: Settings, *, as_json: bool, out: TextIO | None = None
) -> int:
    """Print an explanation and return the exit status: 0 valid, 1 invalid, 2 keys unavailable."""
    stream = out or sys.stdout
    if as_json:
        data = explanation.to_dict()
        data["endpoint"] = settings.endpoint
        print(json.dumps(data, indent=2, sort_keys=False), file=stream)
    else:
        print(render_explanation(explanation), file=stream)
    if explanation.keys_error is not None:
        if not as_json:
            _err(f"cannot fetch the signing keys of {settings.endpoint}: {_safe(explanation.keys_error)}")
        return EXIT_ERROR
    return EXIT_OK if explanation.valid else EXIT_NEGATIVE


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
        return f"  ({_utc(value)})"
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


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    if not args.endpoint:
        raise CommandError("--endpoint is required (or set AUTHGEAR_ENDPOINT), e.g. https://myapp.authgear.cloud")
    return Settings(
        endpoint=args.endpoint,
        http_timeout=args.timeout,
        allow_insecure_http=args.allow_insecure_http,
        **overrides,
    )


# -- resolve -----------------------------------------------------------------------------------------------


def cmd_resolve(args: argparse.Namespace) -> int:
    overrides = {"resolver_url": args.resolver_url} if args.resolver_url else {}
    settings = _settings(args, **overrides)
    token = _read_token(args.token) if args.token is not None else None
    return report_resolution(settings, token=token, cookie=args.cookie, as_json=args.json)


def resolve_credentials(settings: Settings, *, token: str | None = None, cookie: str | None = None) -> dict[str, Any]:
    """Call the resolver as the library does (Authgear's Host, no redirects, a deadline); return its answer.

    Raises :class:`CommandError` when the resolver cannot be reached or does not answer 200.
    """
    headers = {"Host": settings.authgear_host, "User-Agent": "flask-authgear"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        cookie = cookie.strip()
        if cookie.lower().startswith("cookie:"):
            cookie = cookie[len("cookie:") :].strip()
        headers["Cookie"] = cookie if "=" in cookie else f"session={cookie}"
    url = settings.resolver_url
    try:
        with requests.get(
            url, headers=headers, timeout=settings.http_timeout, allow_redirects=False, stream=True
        ) as response:
            body = next(response.iter_content(1024), b"") if response.status_code == 200 else b""
    except ValueError:
        raise CommandError("the credentials contain characters that cannot be sent in a header") from None
    except requests.RequestException as exc:
        raise CommandError(f"cannot reach the resolver at {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise CommandError(
            f"the resolver at {url} answered HTTP {response.status_code}; an app in resolver mode answers 503"
        )
    shown = {name: value for name, value in response.headers.items() if name.lower().startswith("x-authgear-")}
    # The library's own reading of the answer, so the verdict here is the one an app would reach.
    malformed: str | None = "the resolver answered with a body; Authgear's resolver never does" if body else None
    user = None
    if malformed is None:
        try:
            user = parse_answer(answer_headers(response.headers))
        except MalformedAnswer as exc:
            malformed = str(exc)
    return {
        "url": url,
        "status": response.status_code,
        "authenticated": user is not None,
        "malformed": malformed,
        "user": None if user is None else user.to_dict(),
        "headers": shown,
        "clears_cookie": "Set-Cookie" in response.headers,
    }


def report_resolution(
    settings: Settings, *, token: str | None, cookie: str | None, as_json: bool, out: TextIO | None = None
) -> int:
    stream = out or sys.stdout
    answer = resolve_credentials(settings, token=token, cookie=cookie)
    if as_json:
        print(json.dumps(answer, indent=2), file=stream)
    else:
        print(render_resolution(answer), file=stream)
    if answer["malformed"] is not None:
        return EXIT_ERROR
    return EXIT_OK if answer["authenticated"] else EXIT_NEGATIVE


def render_resolution(answer: Mapping[str, Any]) -> str:
    headers: Mapping[str, str] = answer["headers"]
    lines = [f"GET {answer['url']} -> HTTP {answer['status']}"]
    if headers:
        width = max(len(name) for name in headers)
        lines.extend(f"  {name:<{width}}  {value}" for name, value in headers.items())
    else:
        lines.append("  (no X-Authgear-* header)")
    user = answer["user"]
    if answer["malformed"] is not None:
        lines.append(f"Result: MALFORMED, {answer['malformed']}; an app in resolver mode answers 503")
    elif user is not None:
        roles = ", ".join(user["roles"]) or "none"
        lines.append(f"Result: AUTHENTICATED, user {user['id']} (roles: {roles})")
    elif any(name.lower() == "x-authgear-session-valid" for name in headers):
        extra = "; the resolver also clears the cookie" if answer["clears_cookie"] else ""
        lines.append(f"Result: NOT AUTHENTICATED, the session is no longer valid{extra}")
    else:
        lines.append(
            "Result: NOT AUTHENTICATED, no credentials recognised "
            "(an unknown, expired or revoked bearer token gets no X-Authgear-* header at all)"
        )
    return "\n".join(_safe(line) for line in lines)


# -- `flask authgear ...` ----------------------------------------------------------------------------------

flask_group = AppGroup("authgear", help="Authgear tools that use this app's own settings.")


def app_settings() -> Settings:
    """The current app's settings: the extension's when it is set up, else its ``AUTHGEAR_*`` config."""
    for name in ("authgear", "flask_authgear"):
        ext = current_app.extensions.get(name)
        settings = getattr(ext, "settings", None)
        if isinstance(settings, Settings):
            return settings
    try:
        return Settings.from_mapping(current_app.config)
    except ConfigurationError as exc:
        raise _ClickError(f"bad setting: {exc}") from None


@flask_group.command("verify")
@click.argument("token")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flask_verify(token: str, as_json: bool) -> None:
    """Explain TOKEN and check it with this app's settings ('-' reads standard input)."""
    settings = app_settings()
    try:
        token = _read_token(token)
    except CommandError as exc:
        raise click.UsageError(str(exc)) from None
    code = report_explanation(explain_token(token, settings), settings, as_json=as_json)
    raise SystemExit(code)


@flask_group.command("resolve")
@click.option("--token", help="A bearer token ('-' reads standard input).")
@click.option("--cookie", help="A Cookie header or a bare session cookie value.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flask_resolve(token: str | None, cookie: str | None, as_json: bool) -> None:
    """Show what this app's resolver answers for a token or a cookie."""
    if (token is None) == (cookie is None):
        raise click.UsageError("give exactly one of --token and --cookie")
    settings = app_settings()
    try:
        code = report_resolution(
            settings, token=_read_token(token) if token is not None else None, cookie=cookie, as_json=as_json
        )
    except CommandError as exc:
        raise _ClickError(str(exc)) from None
    raise SystemExit(code)


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


@flask_group.command("health")
def flask_health() -> None:
    """Load the signing keys with this app's settings and print the verifier's health; exit 1 when not ready."""
    ext = current_app.extensions.get("authgear")
    health_of = getattr(ext, "health", None)
    if callable(health_of):
        health: dict[str, Any] = health_of(warm_up=True)
    else:
        verifier = Verifier(app_settings())
        try:
            health = verifier.warm_up()
        finally:
            verifier.close()
    click.echo(json.dumps(health, indent=2, default=str))  # JSON escapes control characters
    raise SystemExit(EXIT_OK if health.get("ready") else EXIT_NEGATIVE)


# -- output ------------------------------------------------------------------------------------------------


def _safe(text: str) -> str:
    """Escape control characters so that text from a token or a server cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(f"flask-authgear: {text}", file=sys.stderr, flush=True)


def _fail(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message}))
    _err(f"error: {message}")
    return EXIT_ERROR


def _json_answer(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
