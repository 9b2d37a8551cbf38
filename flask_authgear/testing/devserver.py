"""The server behind ``flask-authgear dev-server``: the local Authgear look-alike plus a way to mint tokens.

``flask-authgear token`` must reach the running dev server to get tokens signed with its key. It does so
through a mint route, ``POST /_dev/token`` (and ``/_dev/session`` for resolver sessions), guarded three ways:

* the dev server binds only loopback addresses, and the route answers only requests from a loopback peer;
* every mint request must carry the server's random secret in the ``X-Dev-Server-Secret`` header, compared
  in constant time;
* the secret is written, with the endpoint, to a state file only the current user can read (mode 0600 in a
  0700 directory) and removed when the server stops.

With :attr:`~AuthgearTestServer.jwt_hook` set, minting first asks the app's ``oidc.jwt.pre_create`` hook and
adds the claims it returns, as Authgear does; when the hook refuses or fails, nothing is minted and the mint
route answers 502 with the reason. The state file also holds the webhook secret the server signs events with.

So another user of the machine, a web page in a browser (which cannot read the file nor set the header
cross-origin without a preflight) and anything off the machine cannot mint tokens. The test server used by
pytest has no such route at all.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from ..config import is_loopback_host
from ..core import json as strict_json
from .events import HookError
from .server import AuthgearTestServer, json_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "SECRET_HEADER",
    "STATE_ENV",
    "DevServer",
    "MintError",
    "default_state_file",
    "read_state",
    "token_arguments",
]

SECRET_HEADER = "X-Dev-Server-Secret"
#: Moves the state file. Neither ``FLASK_`` (``app.config.from_prefixed_env()`` imports those) nor
#: ``AUTHGEAR_`` (the library's settings): a prefix no settings loader reads.
STATE_ENV = "FLASKAUTHGEAR_DEV_STATE"
_MINT_PREFIX = "/_dev/"
#: Bounds ``expires_in`` (JSON also carries Infinity and NaN, which no token can hold): ten years.
_MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


def default_state_file() -> Path:
    """Where the dev server records its endpoint and secret: ``$FLASKAUTHGEAR_DEV_STATE`` or the user's cache."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flask-authgear" / "dev-server.json"


def read_state(path: Path) -> dict[str, Any]:
    """A dev server's state file; OSError when it cannot be read, ValueError when no dev server wrote it."""
    state = json.loads(path.read_text(encoding="utf-8"))
    if not (
        isinstance(state, dict) and isinstance(state.get("endpoint"), str) and isinstance(state.get("secret"), str)
    ):
        raise ValueError("not a dev server state file")
    return state


class MintError(ValueError):
    """A mint request with bad parameters; the message says which."""


class DevServer(AuthgearTestServer):
    """:class:`AuthgearTestServer` with the secret-guarded mint routes, for ``flask-authgear dev-server``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback_host(host):
            raise ValueError("the dev server binds only loopback addresses (127.0.0.1, ::1 or localhost)")
        super().__init__(host, port)
        self.secret = secrets.token_urlsafe(32)
        self.state_file: Path | None = None

    def write_state(self, path: Path) -> None:
        """Record endpoint, mint secret and webhook secret in ``path``, readable only by the current user.

        The secret goes into a new file with an unpredictable name (``mkstemp``: ``O_EXCL|O_NOFOLLOW``, mode 0600, so a
        file or symlink planted in a shared directory is neither reused nor followed), then is renamed over
        ``path``: the rename replaces a planted symlink instead of writing through it.
        """
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = {"endpoint": self.endpoint, "secret": self.secret, "webhook_secret": self.webhook_secret}
        data = json.dumps({**state, "pid": os.getpid()})
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.state_file = path

    def remove_state(self) -> None:
        """Remove the state file if it is still ours (another dev server may have replaced it)."""
        path, self.state_file = self.state_file, None
        with contextlib.suppress(OSError, ValueError):
            if path is not None and read_state(path)["secret"] == self.secret:
                path.unlink()

    def stop(self) -> None:
        super().stop()
        self.remove_state()

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(_MINT_PREFIX):
            return self._mint(Request(environ))(environ, start_response)
        return super().wsgi_app(environ, start_response)

    def _mint(self, request: Request) -> Response:
        if not is_loopback_host(request.remote_addr or ""):
            return _json_error("the mint route answers loopback clients only", 403)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return _json_error("a valid X-Dev-Server-Secret header is required", 403)
        if request.method != "POST":
            return _json_error("use POST", 405)
        try:
            params = strict_json.loads_object(request.get_data())
        except ValueError:
            return _json_error(
                "the body must be a JSON object (strict: unique names, finite numbers, "
                f"nesting at most {strict_json.MAX_DEPTH} levels)",
                400,
            )
        try:
            if request.path == "/_dev/token":
                return json_response({"token": self.issue_token(**token_arguments(params))})
            if request.path == "/_dev/machine":
                arguments = _machine_arguments(params)
                try:
                    return json_response({"token": self.machine_token(**arguments)})
                except ValueError as exc:  # a resource Authgear refuses (beginning with the endpoint)
                    raise MintError(str(exc)) from None
            if request.path == "/_dev/session":
                session = self.create_session(**_user_arguments(params))
                return json_response({"token": session.token, "cookie": session.cookie, "user_id": session.user_id})
        except MintError as exc:
            return _json_error(str(exc), 400)
        except HookError as exc:  # the app's oidc.jwt.pre_create hook refused or failed: Authgear mints nothing
            return _json_error(str(exc), 502)
        return _json_error("unknown route", 404)


def token_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Checked keyword arguments for :meth:`AuthgearTestServer.issue_token` from a mint request."""
    out: dict[str, Any] = _user_arguments(params)
    out["expires_in"] = _expires_in(params)
    claims = params.get("claims", {})
    if not isinstance(claims, dict) or not all(isinstance(k, str) for k in claims):
        raise MintError("claims must be a JSON object")
    reserved = {"sub", "key", "header", *out}
    clash = sorted(reserved.intersection(claims))
    if clash:
        raise MintError(f"claims must not set {', '.join(clash)}; use the dedicated options")
    out.update(claims)
    return out


def _machine_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Checked keyword arguments for :meth:`AuthgearTestServer.machine_token` from a mint request."""
    client_id, resource = params.get("client_id"), params.get("resource")
    if not isinstance(client_id, str) or not client_id:
        raise MintError("client_id must be a non-empty string")
    if not isinstance(resource, str) or not resource:
        raise MintError("resource is required: the API resource's identifier, the token's aud")
    scopes = params.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise MintError("scopes must be a list of scope names without spaces")
    expires_in = _expires_in(params)
    return {"client_id": client_id, "resource": resource, "scopes": scopes, "expires_in": expires_in}


def _user_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Checked keyword arguments for :meth:`AuthgearTestServer.create_session` from a mint request."""
    sub = params.get("sub", "user-1")
    if not isinstance(sub, str) or not sub:
        raise MintError("sub must be a non-empty string")
    out: dict[str, Any] = {"sub": sub}
    for name in ("roles", "amr"):
        if name in params:
            value = params[name]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise MintError(f"{name} must be a list of strings")
            out[name] = value
    for name in ("is_verified", "is_anonymous"):
        if name in params:
            if not isinstance(params[name], bool):
                raise MintError(f"{name} must be true or false")
            out[name] = params[name]
    return out


def _expires_in(params: dict[str, Any]) -> float:
    expires_in = params.get("expires_in", 3600)
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not abs(expires_in) <= _MAX_EXPIRES_IN
    ):
        raise MintError(f"expires_in must be a number of seconds, at most {_MAX_EXPIRES_IN} either way")
    return float(expires_in)


def _json_error(message: str, status: int) -> Response:
    return json_response({"error": message}, status)
