"""One validated settings object, built from keyword arguments, Flask's ``app.config`` and the environment.

Every value is checked once, at start-up, so that a typo in production configuration is a readable
exception before the first request instead of a 500 (or worse, an open door) later.

The fields of :class:`Settings` are the table of settings: each has a type, a default, a meaning, perhaps bounds,
and a parser when its type does not say how to read it. That one table drives validation, the error messages and
the documentation's table of settings (:func:`settings_rows`). The rules that tie settings together are in
:func:`_checked`.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "CONFIG_PREFIX",
    "ENVIRONMENT_LABEL",
    "IPNetwork",
    "Mode",
    "Settings",
    "check_url",
    "given_setting",
    "is_loopback_host",
    "secret_list",
    "settings_rows",
]

Mode = Literal["jwt", "resolver", "proxy", "auto"]
_MODES: tuple[str, ...] = get_args(Mode)

#: Asymmetric JWS algorithms we can verify with public keys from a JWKS: the only ones allowed.
_ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
#: The shared caches beside ``memory``, by the start of their URL.
_CACHE_SCHEMES = ("sqlite:///", "redis://", "rediss://", "unix://")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONFIG_PREFIX = "AUTHGEAR_"
#: How a message names a setting read from an environment variable.
ENVIRONMENT_LABEL = "{key} (from the environment)"

#: Turns a raw value into a setting's value; called with the value and the setting's name as the user wrote it.
_Parser = Callable[[Any, str], Any]

# -- parsers: one per kind of value ---------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def _printable(value: Any) -> bool:
    """A non-empty string of printable ASCII: what a header or a URL can carry."""
    return isinstance(value, str) and value != "" and value.isascii() and value.isprintable()


def _url(url: object, what: str, *, query: bool = False) -> str:
    """An absolute http(s) URL without credentials or fragment, nor a query unless ``query`` (whether plain http
    is allowed is :func:`_require_https`'s rule, once every setting is read)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{what} must be a non-empty URL string, got {type(url).__name__}")
    url = url.strip()
    if not _printable(url) or " " in url or "\\" in url:
        raise ConfigurationError(f"{what} must be a URL of printable ASCII characters without spaces or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(f"{what} is not a valid URL (an unbalanced IPv6 bracket or an invalid port)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{what} must be an absolute http(s) URL such as https://myapp.authgear.cloud")
    if parts.username or parts.password:
        raise ConfigurationError(f"{what} must not carry credentials")
    if parts.fragment or (parts.query and not query):
        raise ConfigurationError(f"{what} must not carry {'a fragment' if query else 'a query string or fragment'}")
    return url


def _require_https(url: str, what: str, allow_insecure_http: bool, switch: str) -> str:
    """``url``, unless it uses plain http to a host that is not this machine and ``switch`` does not allow it."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback_host(parts.hostname or "")):
        raise ConfigurationError(f"{what} uses plain http on a non-loopback host; use https, or set {switch} to true")
    return url


def check_url(url: str, what: str, allow_insecure_http: bool, switch: str = "allow_insecure_http") -> str:
    """Check that ``url`` is an absolute https URL (http only for loopback, or with the ``switch`` setting on)."""
    return _require_https(_url(url, what), what, allow_insecure_http, switch)


def _optional(parse: _Parser) -> _Parser:
    """``parse`` for a setting that may be left unset (None or an empty string): then it is None."""
    return lambda value, what: None if value is None or value == "" else parse(value, what)


def _login_url(value: Any, what: str) -> str:
    """Where browsers sign in: a path of this site (``/login``) or an absolute http(s) URL; a query may follow.

    A path must start with exactly one ``/``: ``//host`` and ``/\\host`` are other sites to a browser.
    """
    if not (isinstance(value, str) and value.startswith("/")):
        return _url(value, what, query=True)
    if value.startswith("//") or not _printable(value) or {" ", "\\", "#"} & set(value):
        raise ConfigurationError(
            f"{what} must be a path of this site such as /login (not //host), without spaces, backslashes or fragment"
        )
    return value


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    """A list of strings, or one string of them separated by commas or spaces."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be a string or a list of strings")
    out = tuple(value)
    if not all(isinstance(v, str) and v.strip() for v in out):
        raise ConfigurationError(f"{what} must contain only non-empty strings")
    return out


def secret_list(value: Any, what: str) -> tuple[str, ...]:
    """One secret or several (during a rotation); a string from the environment separates them with commas.

    Only commas separate, so an empty item (``a,,b``) is refused. The messages never show the value.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")] if value.strip() else []
    return _str_list(value, what)


def _algorithms(value: Any, what: str) -> tuple[str, ...]:
    algorithms = _str_list(value, what)
    if not algorithms:
        raise ConfigurationError(f"{what} must not be empty")
    for alg in algorithms:
        if alg not in _ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(f"{what}: {alg!r} is not allowed: tokens must be signed with an asymmetric key")
    return algorithms


def _origins(value: Any, what: str) -> tuple[str, ...]:
    return tuple(o.rstrip("/").lower() for o in _str_list(value or (), what))


def _networks(value: Any, what: str) -> tuple[IPNetwork, ...]:
    """IPs or CIDRs, as strings or ``ipaddress`` objects."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value or ()
    if not isinstance(items, Iterable):
        raise ConfigurationError(f"{what} must be a list of IP addresses or CIDRs")
    try:
        return tuple(ipaddress.ip_network(str(item), strict=False) for item in items)
    except ValueError as exc:  # its message quotes the item: "'10.0.0.300' does not appear to be an IPv4 ..."
        raise ConfigurationError(f"{what}: {exc}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, str):
        with suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number")
    return float(value)


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _bool(value: Any, what: str) -> bool:
    value = _BOOLEANS.get(value.strip().lower(), value) if isinstance(value, str) else value
    if not isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a boolean")
    return value


def _mode(value: Any, what: str) -> str:
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in _MODES:
        raise ConfigurationError(f"{what} must be one of {', '.join(_MODES)}; got {value!r}")
    return str(mode)


def _realm(value: Any, what: str) -> str:
    """Text that can sit between the quotes of a ``WWW-Authenticate`` header."""
    if not _printable(value) or {'"', "\\"} & set(value):
        raise ConfigurationError(f"{what} must be printable ASCII, non-empty, without quotes or backslashes")
    return str(value)


def _cache(value: Any, what: str) -> str:
    if not isinstance(value, str) or not (value == "memory" or value.startswith(_CACHE_SCHEMES)):
        raise ConfigurationError(f"{what} must be 'memory', 'sqlite:///path' or 'redis://host:port/db'")
    return str(value)


def _cache_secret(value: Any, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) < 16):
        raise ConfigurationError(f"{what} must be a string of at least 16 characters")
    return value


#: The parser of a setting whose row names none, by the field's type (the annotation, a string under
#: ``from __future__ import annotations``).
_PARSERS: dict[Any, _Parser] = {"float": _number, "int": _number, "bool": _bool, "tuple[str, ...]": _str_list}


# -- the table ------------------------------------------------------------------------------------------------


def _setting(
    default: Any, meaning: str, bounds: tuple[float, float] | None = None, *, secret: bool = False, **row: Any
) -> Any:
    """A :class:`Settings` field that carries its row of the table, in its metadata.

    ``meaning`` is inline text as the documentation shows it (`code`, **bold**); ``bounds`` the inclusive minimum
    and maximum of a number. ``row`` may add ``parse``, which reads a value when the field's type does not say how
    (:data:`_PARSERS`), and ``shown``, the default as the documentation shows it when it is derived. A secret
    never shows in ``repr``.
    """
    return field(default=default, repr=not secret, metadata={"meaning": meaning, "bounds": bounds, **row})


@dataclass(frozen=True)
class Settings:
    """Validated settings shared by the core and both adapters.

    ``Settings(endpoint=...)`` checks every value, and so does ``dataclasses.replace``; messages name a setting by
    its keyword. :meth:`load` reads ``AUTHGEAR_*`` keys too and names each as written there. Derived defaults
    (issuer, audience, resolver URL) are filled in here, once.
    """

    # A plain field(), so that type checkers see the one required setting.
    endpoint: str = field(
        metadata={"meaning": "the project origin, e.g. `https://myapp.authgear.cloud`", "parse": _url}
    )
    mode: Mode = _setting("jwt", "`jwt`, `resolver`, `proxy` or `auto`", parse=_mode)  # noqa: RUF009 - a field()
    audience: tuple[str, ...] = _setting(
        (),
        "accepted `aud` values (any of): the endpoint for user tokens, an API resource's identifier for machine "
        "tokens; a list, or one comma-separated string",
        shown="`[ENDPOINT]`",
    )
    issuer: str = _setting("", "expected `iss` (set it for custom domains)", parse=_optional(_url), shown="`ENDPOINT`")
    jwks_uri: str | None = _setting(None, "where the signing keys are", parse=_optional(_url), shown="from discovery")
    leeway: float = _setting(60.0, "clock skew allowed for `exp`, `nbf`, `iat`, in seconds", (0, 600))
    algorithms: tuple[str, ...] = _setting(
        ("RS256",), "allowed JWS algorithms; symmetric ones are refused at start-up", parse=_algorithms
    )
    require_typ: bool = _setting(
        True, "require `typ: at+jwt` (RFC 9068), so ID tokens are never accepted as access tokens"
    )
    realm: str = _setting("authgear", "the realm of the `WWW-Authenticate` challenge", parse=_realm)
    allow_insecure_http: bool = _setting(False, "allow plain http to a host not on loopback (never in production)")
    jwks_cache_ttl: float = _setting(300.0, "seconds before the JWKS is refreshed", (1, 86400))
    jwks_refetch_cooldown: float = _setting(
        30.0, "minimum seconds between refetches for unknown `kid`s; the first after any fetch is at once", (0, 3600)
    )
    jwks_max_stale: float = _setting(
        3600.0, "how long the last good keys serve while the JWKS endpoint fails; then 503", (0, 604800)
    )
    http_timeout: float = _setting(
        5.0, "deadline of each whole call to Authgear (connect, headers, body, even dripped); then 503", (0.01, 120)
    )
    max_header_bytes: int = _setting(
        8192, "largest accepted `Authorization` header (and token); larger is a 400", (256, 65536)
    )
    token_cache_size: int = _setting(
        10_000, "verified tokens remembered until their `exp` (0 disables)", (0, 10_000_000)
    )
    resolver_url: str = _setting(
        "",
        "where the resolver is (e.g. an internal address); `Host` stays Authgear's",
        parse=_optional(_url),
        shown="`ENDPOINT/_resolver/resolve`",
    )
    resolver_cache_ttl: float = _setting(
        60.0, "seconds a positive answer is reused: **the revocation delay** of resolver and auto modes", (0.001, 3600)
    )
    resolver_negative_ttl: float = _setting(5.0, 'seconds a "not authenticated" answer is reused (0: never)', (0, 60))
    cache: str = _setting(
        "memory",
        "resolver answers shared by a process (`memory`), a host (`sqlite:///path`) or all (`redis://host:6379/0`)",
        parse=_cache,
    )
    cache_secret: str | None = _setting(
        None,
        "key of the cache's HMAC: the same value (16+ characters) in every process that shares the cache",
        parse=_cache_secret,
        shown="random per process",
        secret=True,
    )
    resolver_local_cache_size: int = _setting(
        10_000, "answers kept in process (0 disables them; with `memory` the whole cache)", (0, 10_000_000)
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        (),
        "IPs or CIDRs of the proxy whose `X-Authgear-*` headers are believed",
        parse=_networks,
        shown="none (required in proxy mode)",
    )
    csrf_protection: bool = _setting(True, "refuse cross-site state-changing requests authenticated by a cookie")
    trusted_origins: tuple[str, ...] = _setting(
        (), "origins (`https://app.example.com`) allowed to send them anyway", parse=_origins
    )
    webhook_secret: tuple[str, ...] = _setting(
        (),
        "secrets that sign Authgear's webhook calls; several (comma-separated) during a rotation",
        parse=secret_list,
        secret=True,
    )
    login_url: str | None = _setting(
        None,
        "where a browser asking for a page of a protected view without valid credentials is redirected, with "
        "`next` (a path such as `/login`, or an https URL); API clients still get 401",
        parse=_optional(_login_url),
        shown="none (401)",
    )

    def __post_init__(self) -> None:
        for name, value in _checked(vars(self)).items():
            object.__setattr__(self, name, value)

    @classmethod
    def load(
        cls, config: Mapping[str, Any] | None = None, /, *, environ: Mapping[str, str] | None = None, **keywords: Any
    ) -> Settings:
        """Settings by the one rule every door follows (the Flask extension, the WSGI middleware, the command line).

        A keyword argument wins over an ``AUTHGEAR_*`` key of ``config`` (Flask's ``app.config``), which wins over
        an ``AUTHGEAR_*`` environment variable (``environ``, by default ``os.environ``; ``environ={}`` reads
        ``config`` alone). Messages name each setting as it was written: ``leeway``, ``AUTHGEAR_LEEWAY`` or
        ``AUTHGEAR_LEEWAY (from the environment)``.

        Other ``AUTHGEAR_*`` keys are ignored, since other Authgear tools read theirs (``AUTHGEAR_CLIENT_ID`` ...)
        from the same places; one that is nearly a setting's name (``AUTHGEAR_AUDIANCE``) gets a warning. An
        unknown keyword is an error: it is code, and a typo must not fall back to a default.
        """
        for name in keywords:
            if name not in _SETTING_NAMES:
                guess = _near_miss(name)
                raise ConfigurationError(f"unknown setting {name!r}" + (f"; did you mean {guess!r}?" if guess else ""))
        given = [*_given(config, environ), *((name, value, name) for name, value in keywords.items())]
        values = {name: value for name, value, _ in given}
        labels = {name: label for name, _, label in given}
        # A setting given nowhere is named as the door takes it: a config key for an app, else a keyword.
        for name in _SETTING_NAMES - labels.keys():
            labels[name] = CONFIG_PREFIX + name.upper() if config is not None else name
        if "endpoint" not in values:
            where = (
                "in app.config or the environment" if config is not None else "or AUTHGEAR_ENDPOINT in the environment"
            )
            raise ConfigurationError(
                f"{labels['endpoint']} is required ({where}): the Authgear project origin, "
                "e.g. https://myapp.authgear.cloud"
            )
        settings = cls(**_checked(values, labels))
        object.__setattr__(settings, "_labels", labels)
        return settings

    def label(self, name: str) -> str:
        """Setting ``name`` as the user wrote it (``cache``, ``AUTHGEAR_CACHE``, ``AUTHGEAR_CACHE (from the
        environment)``), for messages about its value after start-up."""
        labels: dict[str, str] = getattr(self, "_labels", {})
        return labels.get(name, name)

    @property
    def authgear_host(self) -> str:
        """The Host header Authgear expects: it picks the project by host."""
        return urlsplit(self.endpoint).netloc


#: The names a setting can be given by (lowercase keywords; ``AUTHGEAR_`` + upper case in a config mapping).
_SETTING_NAMES = frozenset(f.name for f in fields(Settings))


def _given(config: Mapping[str, Any] | None, environ: Mapping[str, str] | None) -> list[tuple[str, Any, str]]:
    """The settings of the ``AUTHGEAR_*`` keys of the environment, then of ``config``: each one's name, value and
    label, the weakest source first, so that the last which gives a setting wins."""
    from_environment = _prefixed(os.environ if environ is None else environ, ENVIRONMENT_LABEL)
    return [*from_environment, *(() if config is None else _prefixed(config))]


def given_setting(
    name: str, config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> tuple[Any, str]:
    """One setting's raw value and its label, read from ``config`` and the environment by :meth:`Settings.load`'s
    rule, for a door that needs it alone (a webhook URL of an app without the extension): ``(None, label)`` when
    neither gives it."""
    for given, value, label in reversed(_given(config, environ)):
        if given == name:
            return value, label
    return None, CONFIG_PREFIX + name.upper()


def _prefixed(source: Mapping[str, Any], label: str = "{key}") -> Iterator[tuple[str, Any, str]]:
    """The settings among the ``AUTHGEAR_*`` keys of ``source``: each one's name, value and label for messages.
    A near miss of a setting's name gets a warning."""
    for key, value in source.items():
        if not (isinstance(key, str) and key.startswith(CONFIG_PREFIX)):
            continue
        name = key[len(CONFIG_PREFIX) :].lower()
        if name in _SETTING_NAMES:
            yield name, value, label.format(key=key)
        elif guess := _near_miss(name):
            warnings.warn(
                f"{label.format(key=key)} is not a flask-authgear setting and is ignored; "
                f"did you mean {CONFIG_PREFIX}{guess.upper()}?",
                UserWarning,
                stacklevel=_caller_outside_package(),
            )


def _checked(values: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each setting parsed and within its bounds, then the rules that tie settings together; derived defaults.

    ``labels`` give the name a setting was written by (``AUTHGEAR_LEEWAY``), for messages. :meth:`Settings.load`
    checks under those names before it builds :class:`Settings`, whose own check of the result then passes.
    """

    def label(name: str) -> str:
        return labels.get(name, name) if labels else name

    out: dict[str, Any] = {}
    for f in fields(Settings):
        value = (f.metadata.get("parse") or _PARSERS[f.type])(values.get(f.name, f.default), label(f.name))
        if (bounds := f.metadata.get("bounds")) and not bounds[0] <= value <= bounds[1]:
            raise ConfigurationError(f"{label(f.name)} must be between {_num(bounds[0])} and {_num(bounds[1])}")
        # The annotation is the table's type column (a string, under ``from __future__ import annotations``).
        out[f.name] = int(value) if f.type == "int" else value
    for name in ("endpoint", "issuer", "jwks_uri", "resolver_url", "login_url"):
        if out[name] is not None and not out[name].startswith("/"):  # a login page may be a path of this site
            _require_https(out[name], label(name), out["allow_insecure_http"], label("allow_insecure_http"))
    parts = urlsplit(out["endpoint"])
    if parts.path not in ("", "/"):
        raise ConfigurationError(f"{label('endpoint')} must be the project origin, without a path")
    # Host names are case-insensitive; Authgear writes its origin (``iss``) in lowercase.
    endpoint = out["endpoint"] = f"{parts.scheme}://{parts.netloc.lower()}"
    # The issuer is compared exactly with ``iss`` and with the discovery document's ``issuer``.
    out["issuer"] = out["issuer"] or endpoint
    out["audience"] = _audiences(out["audience"] or (endpoint,), endpoint, out["issuer"], label("audience"))
    out["resolver_url"] = out["resolver_url"] or f"{endpoint}/_resolver/resolve"
    if out["mode"] == "proxy" and not out["trusted_proxies"]:
        raise ConfigurationError(
            f"proxy mode needs {label('trusted_proxies')}: the addresses (IPs or CIDRs) of the proxy that sets "
            "X-Authgear-*"
        )
    return out


def _audiences(audiences: tuple[str, ...], endpoint: str, issuer: str, what: str) -> tuple[str, ...]:
    """The accepted audiences: the Authgear origin itself (user tokens), or API resource identifiers that do not
    begin with it. Authgear's token endpoint refuses a resource whose URI begins with its issuer, so no token could
    ever carry such an audience: it is a mistake (often the endpoint with a path or a trailing slash)."""
    for audience in audiences:
        for origin in (endpoint, issuer):
            if audience.startswith(origin) and audience not in (endpoint, issuer):
                raise ConfigurationError(
                    f"{what}: {audience!r} begins with the Authgear endpoint {origin}; Authgear refuses such an API "
                    f"resource identifier, so no token can carry it (user tokens carry exactly {origin})"
                )
    return audiences


def _near_miss(name: str) -> str | None:
    """The setting ``name`` is probably a misspelling of, if any (``audiance`` -> ``audience``)."""
    # 0.8 catches a letter or two; Authgear's own keys (client_secret vs cache_secret: 0.72) stay below it.
    close = difflib.get_close_matches(name, _SETTING_NAMES, n=1, cutoff=0.8)
    return close[0] if close else None


def _caller_outside_package() -> int:
    """The ``stacklevel`` of the nearest caller outside flask_authgear, so a warning names the user's own line.

    ``Authgear(app)`` reaches :meth:`Settings.load` through ``init_app``; a fixed level would name one of those
    instead.
    """
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == __package__:
        frame, level = frame.f_back, level + 1
    return level


def _num(x: float) -> str:
    """A number as people write it: ``10000000``, ``0.01``."""
    return str(int(x)) if x == int(x) else f"{x:g}"


def settings_rows() -> list[tuple[str, str, str]]:
    """The documentation's table of settings, one ``(name, default, meaning)`` row per field of :class:`Settings`.

    The cells are Markdown-style inline text (`code`, **bold**); the documentation renders them at build time, so
    the table cannot drift from what is validated here.
    """
    rows = []
    for f in fields(Settings):
        if f.metadata.get("shown") or f.default is MISSING:
            default = f.metadata.get("shown") or "required"
        elif isinstance(f.default, tuple):
            default = "`[" + ", ".join(f'"{v}"' for v in f.default) + "]`" if f.default else "none"
        else:
            default = f"`{_num(f.default) if isinstance(f.default, float) else f.default}`"
        bounds = f.metadata.get("bounds")
        shown_bounds = f"; {_num(bounds[0])} to {_num(bounds[1])}" if bounds else ""
        rows.append((f"`{f.name.upper()}`", default, f.metadata["meaning"] + shown_bounds))
    return rows
