"""The WSGI adapter: :class:`AuthgearMiddleware` puts the request's Authgear user in the environ of any WSGI app."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.http import HTTP_STATUS_CODES

from .config import Settings
from .core.login import login_redirect
from .core.request import ENVIRON_USER, is_preflight, varying_start_response
from .core.requirements import Requirements, RouteOptions
from .core.verifier import Verifier
from .errors import AuthgearError, ConfigurationError
from .user import AuthgearUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ENVIRON_ERROR", "ENVIRON_USER", "AuthgearMiddleware"]

#: Environ key holding the :class:`~flask_authgear.errors.AuthgearError` that explains why there is no user.
ENVIRON_ERROR = "authgear.error"

#: Characters that would make a prefix look like a pattern; prefixes are literal, so these are refused.
_PATTERN_CHARACTERS = frozenset("*?[]")
#: The options a protected prefix may carry (``protect={"/api/orders": {"scopes": [...]}}``): those of
#: ``@require_auth`` except ``optional``, which is what a path outside ``protect`` already is.
_PATH_OPTIONS = sorted(RouteOptions.__optional_keys__ - {"optional"})


class AuthgearMiddleware:
    """Authenticate every request of a WSGI app against Authgear.

    .. code-block:: python

        app.wsgi_app = AuthgearMiddleware(app.wsgi_app, endpoint="https://myapp.authgear.cloud", protect=["/api"])

    Each request is authenticated and the result stored in the environ: ``environ["authgear.user"]`` is the
    :class:`~flask_authgear.user.AuthgearUser` or None, ``environ["authgear.error"]`` the
    :class:`~flask_authgear.errors.AuthgearError` that explains why there is no user (no credentials, an invalid
    token, Authgear unreachable ...) or None. For paths under one of the ``protect`` prefixes, minus the
    ``public`` ones, the middleware answers 400/401/403/503 itself with the RFC 6750 ``WWW-Authenticate`` header
    and a JSON body, so the app only ever sees authenticated requests there. Elsewhere it only annotates.

    ``protect`` is a list of prefixes, or a mapping from prefix to the options of ``@require_auth`` for the paths
    under it (``{"/api": {}, "/api/orders": {"scopes": ["read:orders"], "allow_machine": True}}``): the longest
    matching prefix decides. ``allow_anonymous``, ``allow_machine`` and ``scopes`` given to the middleware apply to
    every protected prefix that does not set its own; outside ``protect`` an anonymous user and a machine are
    stored only when the middleware allows them.

    Settings are the lowercase keyword arguments of :class:`~flask_authgear.config.Settings` (``endpoint=``,
    ``mode=``, ``audience=``, ``leeway=`` ...), then ``AUTHGEAR_*`` environment variables for those not given, as
    the extension reads them; or a ready ``settings=Settings(...)``, or a shared ``verifier=Verifier(...)``.

    Security notes. Client-supplied ``X-Authgear-*`` identity headers are removed from the environ before the app
    runs, so app code that reads those headers cannot be fooled (``X-Authgear-Body-Signature``, which signs
    Authgear's webhooks, is kept); in trusted proxy mode they are kept only when the direct peer, before any
    ``ProxyFix``, is one of ``trusted_proxies`` (the proxy overwrites them). Authgear anonymous users are
    refused (403 on protected paths, no user elsewhere) unless ``allow_anonymous=True``, and machines
    (client-credentials tokens) unless ``allow_machine=True``. A prefix matches whole
    path segments (``/api`` covers ``/api`` and ``/api/x``, not ``/apix``), and a path is protected when either
    its raw form or its dot-segment-resolved form is, so ``/public/../api`` cannot slip past. Prefixes are
    literal paths compared with the decoded request path in the server's encoding; when the raw and the resolved
    forms fall under different prefixes, the options of both apply (``/café`` matches
    ``/café/x`` and ``/caf%C3%A9/x``); a prefix with pattern characters (``*?[]``) is refused at start-up. Only a
    CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) passes unauthenticated. Answers carry
    ``Vary: Authorization, Cookie`` so a shared cache never serves one user's answer to another. With
    ``login_url`` (``AUTHGEAR_LOGIN_URL``) set, a browser asking for a protected page without valid credentials is
    redirected there instead of the 401, as the Flask extension does.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        protect: str | Iterable[str] | Mapping[str, RouteOptions] = (),
        public: str | Iterable[str] = (),
        allow_anonymous: bool = False,
        allow_machine: bool = False,
        scopes: str | Iterable[str] | None = None,
        settings: Settings | None = None,
        verifier: Verifier | None = None,
        **options: Any,
    ) -> None:
        if (verifier is not None) + (settings is not None) + bool(options) > 1:
            raise ConfigurationError("pass one of verifier=, settings= or keyword settings, not several")
        self.app = app
        self.verifier = verifier or Verifier(settings or Settings.load(**options))
        self.settings = self.verifier.settings
        #: What a request outside ``protect`` must be for its user to be stored: not anonymous, not a machine,
        #: unless the middleware allows them.
        self._annotation = Requirements(allow_anonymous=allow_anonymous, allow_machine=allow_machine)
        defaults = self._annotation.with_options(scopes=scopes)
        entries = protect if isinstance(protect, Mapping) else {key: {} for key in _items(protect)}
        #: The requirements of each protected prefix, in the encoding of ``PATH_INFO``.
        self._rules = {
            _prefix(prefix, "protect"): _path_requirements(prefix, options, defaults)
            for prefix, options in entries.items()
        }
        self._public = tuple(_prefix(item, "public") for item in _items(public))
        # When every protected prefix asks what the annotation asks, the path need not be read on a request that
        # authenticates: only a refusal has to know whether it is answered here.
        self._uniform = all(rule == self._annotation for rule in self._rules.values())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.verifier.scrub_environ(environ)
        user: AuthgearUser | None = None
        error: AuthgearError | None = None
        if not is_preflight(environ):
            try:
                if self._uniform:
                    user = self.verifier.authenticate_environ(environ, self._annotation)
                else:
                    path = environ.get("PATH_INFO", "") or "/"
                    first, *others = self._rules_for(path) or [self._annotation]
                    user = self.verifier.authenticate_environ(environ, first)
                    for rule in others:
                        rule.check(user)
            except AuthgearError as exc:
                user, error = None, exc
        environ[ENVIRON_USER] = user
        environ[ENVIRON_ERROR] = error
        if error is not None and self.is_protected(environ.get("PATH_INFO", "") or "/"):
            found = login_redirect(environ, error, self.settings.login_url)
            if found is not None:
                return respond(start_response, *found)
            return self.error_response(error, start_response)
        return self.app(environ, varying_start_response(environ, start_response))

    def is_protected(self, path: str) -> bool:
        """Whether the middleware itself refuses unauthenticated requests to ``path``, a ``PATH_INFO`` (the
        decoded path's bytes as Latin-1 text, as WSGI servers hand it over)."""
        return bool(self._rules_for(path))

    def _rules_for(self, path: str) -> list[Requirements]:
        """The requirements of the longest protected prefix of ``path`` (a ``PATH_INFO``) and of its
        dot-segment-resolved form, both when they differ; none outside ``protect`` or under ``public``, where
        only the annotation's apply."""
        found = []
        for form in (path, _normalise(path)):
            prefixes = [prefix for prefix in self._rules if _under(form, prefix)]
            if prefixes and not any(_under(form, prefix) for prefix in self._public):
                rule = self._rules[max(prefixes, key=len)]
                if rule not in found:
                    found.append(rule)
        return found

    def error_response(self, error: AuthgearError, start_response: StartResponse) -> Iterable[bytes]:
        """The answer to a refused request under ``protect``: the error's status, RFC 6750 challenge,
        ``Cache-Control: no-store`` and JSON body. To answer differently, override it in a subclass (call it
        for the default answer); the error never carries request data, so it is safe to show."""
        return respond(start_response, error.status_code, error.headers(self.settings.realm), error.body())


def respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    """A whole WSGI answer: the status line, ``headers`` with ``Content-Length``, and ``body``."""
    start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _items(value: str | Iterable[str]) -> tuple[Any, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _prefix(item: Any, what: str) -> str:
    """A literal path prefix in the encoding of ``PATH_INFO``."""
    if not isinstance(item, str) or not item.startswith("/"):
        raise ConfigurationError(f"{what} entries must be paths starting with '/', got {item!r}")
    if not _PATTERN_CHARACTERS.isdisjoint(item):
        raise ConfigurationError(f"{what} entries are literal path prefixes, not patterns: got {item!r}")
    # In the encoding of PATH_INFO (PEP 3333): the UTF-8 bytes of the path as Latin-1 text.
    wire = item.encode("utf-8").decode("latin-1")
    return wire.rstrip("/")  # "/" becomes "", which covers every path


def _path_requirements(prefix: Any, options: Any, defaults: Requirements) -> Requirements:
    """The requirements of one protected prefix: its own options over the middleware's."""
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"protect[{prefix!r}] must be a mapping of @require_auth options, got {options!r}")
    unknown = sorted(str(name) for name in options if name not in _PATH_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"protect[{prefix!r}]: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(_PATH_OPTIONS)}"
        )
    try:
        return defaults.with_options(**options)
    except ConfigurationError as exc:
        raise ConfigurationError(f"protect[{prefix!r}]: {exc}") from None


def _under(path: str, prefix: str) -> bool:
    """Whether ``prefix`` covers ``path`` by whole segments: ``/api`` covers ``/api`` and ``/api/x``, not ``/apix``."""
    return path == prefix or path.startswith(prefix + "/")


def _normalise(path: str) -> str:
    """Resolve ``.`` and ``..`` segments and repeated slashes, as a normalising router would."""
    # One leading slash in, one out: normpath keeps a leading "//" only when it is given one.
    resolved = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/") and resolved != "/":
        resolved += "/"
    return resolved
