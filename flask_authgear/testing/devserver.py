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
import inspect
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from ..config import is_loopback_host
from ..core import json as strict_json
from .events import HookError, access_token_claims
from .faults import json_response
from .server import AuthgearTestServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["SECRET_HEADER", "STATE_ENV", "DevServer", "default_state_file", "read_state", "token_arguments"]

SECRET_HEADER = "X-Dev-Server-Secret"
#: Moves the state file. Neither ``FLASK_`` (``app.config.from_prefixed_env()`` imports those) nor
#: ``AUTHGEAR_`` (the library's settings): a prefix no settings loader reads.
STATE_ENV = "FLASKAUTHGEAR_DEV_STATE"
#: Bounds ``expires_in`` (JSON also carries Infinity and NaN, which no token can hold): ten years.
_MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(map(_text, value))


def _seconds(value: Any) -> bool:
    """A number of seconds within the bound, so never Infinity or NaN (a float option carries them)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= _MAX_EXPIRES_IN


#: What each parameter of a mint request must be: a test of its JSON value, and the words when it fails.
_PARAMETERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "sub": (_text, "a non-empty string"),
    "client_id": (_text, "a non-empty string"),
    "resource": (_text, "a non-empty string: the API resource's identifier, the token's aud"),
    "roles": (_texts, "a list of strings"),
    "amr": (_texts, "a list of strings"),
    "scopes": (lambda value: _texts(value) and not any(" " in s for s in value), "a list of names without spaces"),
    "is_verified": (lambda value: isinstance(value, bool), "true or false"),
    "is_anonymous": (lambda value: isinstance(value, bool), "true or false"),
    "expires_in": (_seconds, f"a number of seconds, at most {_MAX_EXPIRES_IN} either way"),
    "claims": (lambda value: isinstance(value, dict), "a JSON object"),
}
#: What a mint request's claims must not name: the keywords of ``issue_token``, which take no claim of any shape.
_KEYWORDS = {"key", "header", *inspect.signature(access_token_claims).parameters} - {"claims"}
#: The parameters of a user's token or session.
_USER = ("sub", "roles", "amr", "is_verified", "is_anonymous")


def default_state_file() -> Path:
    """Where the dev server records its endpoint and secret: ``$FLASKAUTHGEAR_DEV_STATE`` or the user's cache."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flask-authgear" / "dev-server.json"


def read_state(path: Path) -> dict[str, Any]:
    """A dev server's state file; OSError when it cannot be read, ValueError when no dev server wrote it."""
    state = strict_json.loads_object(path.read_bytes())
    if not (isinstance(state.get("endpoint"), str) and isinstance(state.get("secret"), str)):
        raise ValueError("not a dev server state file")
    return state


def _arguments(params: dict[str, Any], names: Iterable[str], **defaults: Any) -> dict[str, Any]:
    """The ``names`` of a mint request's ``params`` that it gives (else ``defaults``), each checked: ValueError
    says which is wrong."""
    out = dict(defaults)
    for name in names:
        if name in params:
            test, words = _PARAMETERS[name]
            if not test(params[name]):
                raise ValueError(f"{name} must be {words}")
            out[name] = params[name]
    return out


def token_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Checked keyword arguments for :meth:`AuthgearTestServer.issue_token` from a mint request."""
    out = _arguments(params, (*_USER, "expires_in", "claims"), expires_in=3600)
    claims = out.pop("claims", {})
    clash = sorted(_KEYWORDS.intersection(claims))
    if clash:
        raise ValueError(f"claims must not set {', '.join(clash)}: the request's options and the server set them")
    return {**out, **claims}


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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({**state, "pid": os.getpid()}, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.state_file = path

    def stop(self) -> None:
        """Stop, and remove the state file if it is still ours (another dev server may have replaced it)."""
        super().stop()
        path, self.state_file = self.state_file, None
        with contextlib.suppress(OSError, ValueError):
            if path is not None and read_state(path)["secret"] == self.secret:
                path.unlink()

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_dev/"):
            return self._mint(Request(environ))(environ, start_response)
        return super().wsgi_app(environ, start_response)

    def _mint(self, request: Request) -> Response:
        if not is_loopback_host(request.remote_addr or ""):
            return json_response({"error": "the mint route answers loopback clients only"}, 403)
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), self.secret.encode()):
            return json_response({"error": "a valid X-Dev-Server-Secret header is required"}, 403)
        if request.method != "POST":
            return json_response({"error": "use POST"}, 405)
        try:
            params = strict_json.loads_object(request.get_data())
        except ValueError:
            words = f"strict: unique names, finite numbers, nesting at most {strict_json.MAX_DEPTH} levels"
            return json_response({"error": f"the body must be a JSON object ({words})"}, 400)
        try:
            if request.path == "/_dev/token":
                return json_response({"token": self.issue_token(**token_arguments(params))})
            if request.path == "/_dev/machine":
                required = {"client_id": "", "resource": ""}  # absent, each is refused as an empty one is
                arguments = _arguments({**required, **params}, (*required, "scopes", "expires_in"), expires_in=3600)
                return json_response({"token": self.machine_token(**arguments)})
            if request.path == "/_dev/session":
                session = self.create_session(**_arguments(params, _USER))
                return json_response({"token": session.token, "cookie": session.cookie, "user_id": session.user_id})
        except ValueError as exc:  # a bad parameter, or a resource Authgear refuses
            return json_response({"error": str(exc)}, 400)
        except HookError as exc:  # the app's oidc.jwt.pre_create hook refused or failed: Authgear mints nothing
            return json_response({"error": str(exc)}, 502)
        return json_response({"error": "unknown route"}, 404)
