"""One validated settings object, built from keyword arguments or from Flask's ``app.config``.

Every value is checked once, at start-up, so that a typo in production configuration is a readable
exception before the first request instead of a 500 (or worse, an open door) later.

The fields of :class:`Settings` are the table of settings: each names its parser, bounds, default and meaning.
That one table drives validation, the error messages and the README's settings table
(:func:`settings_markdown`). The few rules that tie settings together follow it in :func:`_cross_check`.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, InitVar, dataclass, field, fields
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from .errors import ConfigurationError

Mode = Literal["jwt", "resolver", "proxy", "auto"]
MODES: tuple[str, ...] = get_args(Mode)

#: Asymmetric JWS algorithms we can verify with public keys from a JWKS.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
SYMMETRIC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512", "none"})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONFIG_PREFIX = "AUTHGEAR_"

#: Turns a raw value into a setting's value; called with the value and the setting's name as the user wrote it.
Parser = Callable[[Any, str], Any]

# -- parsers: one per kind of value ---------------------------------------------------------------------------


def _is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(url: object, what: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment (whether http is allowed comes later)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{what} must be a non-empty URL string, got {type(url).__name__}")
    url = url.strip()
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ConfigurationError(f"{what} must be a URL of printable ASCII characters without spaces")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        raise ConfigurationError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not hostname:
        raise ConfigurationError(f"{what} must be an absolute http(s) URL such as https://myapp.authgear.cloud")
    if parts.username or parts.password:
        raise ConfigurationError(f"{what} must not carry credentials")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{what} must not carry a query string or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(f"{what} has an invalid port") from exc
    return url


def _require_https(url: str, what: str, allow_insecure_http: bool, switch: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "http" and not (allow_insecure_http or _is_loopback_host(parts.hostname or "")):
        raise ConfigurationError(f"{what} uses plain http on a non-loopback host; use https, or set {switch} to true")
    return url


def check_url(url: str, what: str, allow_insecure_http: bool) -> str:
    """Check that ``url`` is an absolute https URL (http only for loopback or by opt-in)."""
    return _require_https(_url(url, what), what, allow_insecure_http, "allow_insecure_http")


def _derived_url(value: Any, what: str) -> str:
    """An optional URL; empty means "derived from the endpoint"."""
    return _url(value, what) if value else ""


def _optional_url(value: Any, what: str) -> str | None:
    return None if value is None else _url(value, what)


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be a string or a list of strings")
    out = tuple(value)
    if not all(isinstance(v, str) and v for v in out):
        raise ConfigurationError(f"{what} must contain only non-empty strings")
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigurationError(f"{what} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number")
    return float(value)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(f"{what} must be a boolean")


def _mode(value: Any, what: str) -> str:
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in MODES:
        raise ConfigurationError(f"{what} must be one of {', '.join(MODES)}; got {value!r}")
    return str(mode)


def _algorithms(value: Any, what: str) -> tuple[str, ...]:
    algorithms = _str_list(value, what)
    if not algorithms:
        raise ConfigurationError(f"{what} must not be empty")
    for alg in algorithms:
        if alg in SYMMETRIC_ALGORITHMS:
            raise ConfigurationError(
                f"{what}: {alg} is not allowed: tokens must be signed with an asymmetric key from the JWKS"
            )
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(f"{what}: unknown algorithm {alg!r}")
    return algorithms


def _realm(value: Any, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or not (value.isascii() and value.isprintable())
        or any(c in value for c in '"\\')
    ):
        raise ConfigurationError(f"{what} must be printable ASCII, non-empty, without quotes or backslashes")
    return value


def _cache(value: Any, what: str) -> str:
    if not isinstance(value, str) or not (
        value == "memory" or value.startswith(("sqlite:///", "redis://", "rediss://", "unix://"))
    ):
        raise ConfigurationError(f"{what} must be 'memory', 'sqlite:///path' or 'redis://host:port/db'")
    return value


def _cache_secret(value: Any, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) < 16):
        raise ConfigurationError(f"{what} must be a string of at least 16 characters")
    return value


def _networks(value: Any, what: str) -> tuple[IPNetwork, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, Iterable | None):
        raise ConfigurationError(f"{what} must be a list of IP addresses or CIDRs")
    out: list[IPNetwork] = []
    for item in value or ():
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            out.append(item)
            continue
        try:
            out.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ConfigurationError(f"{what}: {item!r} is not an IP address or CIDR") from None
    return tuple(out)


def _origins(value: Any, what: str) -> tuple[str, ...]:
    return tuple(o.rstrip("/").lower() for o in _str_list(value or (), what))


def secret_list(value: Any, what: str) -> tuple[str, ...]:
    """One secret or several (during a rotation); a string from the environment separates them with commas.

    The messages never show the value: it is a secret.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")] if value.strip() else []
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be a string or a list of strings")
    out = tuple(value)
    if not all(isinstance(v, str) and v.strip() for v in out):
        raise ConfigurationError(f"{what} must contain only non-empty strings")
    return out


# -- the table ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingSpec:
    """One row of the settings table, kept in the metadata of a :class:`Settings` field."""

    parse: Parser
    #: Markdown, as the README shows it.
    meaning: str
    #: Inclusive (minimum, maximum) of a number.
    bounds: tuple[float, float] | None = None
    #: The default as the README shows it, when it is derived rather than a plain value.
    shown_default: str = ""


def _setting(
    parse: Parser,
    meaning: str,
    default: Any = MISSING,
    *,
    bounds: tuple[float, float] | None = None,
    shown_default: str = "",
    secret: bool = False,
) -> Any:
    """A :class:`Settings` field that carries its row of the table; a secret one never shows in ``repr``."""
    spec = SettingSpec(parse, meaning, bounds, shown_default)
    return field(default=default, repr=not secret, metadata={"setting": spec})


@dataclass(frozen=True)
class Settings:
    """Validated settings shared by the core and both adapters.

    Build with keyword arguments (``Settings(endpoint=...)``) or from a mapping of ``AUTHGEAR_*`` keys with
    :meth:`from_mapping`. Derived defaults (issuer, audience, resolver URL) are filled in here, once. ``labels``
    maps a setting to the name the user wrote it by (``AUTHGEAR_LEEWAY``), for error messages.
    """

    endpoint: str = _setting(
        _url,
        "the project origin, e.g. `https://myapp.authgear.cloud`; https, or http on loopback only "
        "(or `ALLOW_INSECURE_HTTP`)",
        shown_default="required",
    )
    mode: Mode = _setting(_mode, "`jwt`, `resolver`, `proxy` or `auto`", "jwt")  # noqa: RUF009 - a field()
    audience: tuple[str, ...] = _setting(_str_list, "accepted `aud` values (any of)", (), shown_default="`[ENDPOINT]`")
    issuer: str = _setting(_derived_url, "expected `iss` (set it for custom domains)", "", shown_default="`ENDPOINT`")
    jwks_uri: str | None = _setting(_optional_url, "where the signing keys are", None, shown_default="from discovery")
    leeway: float = _setting(_number, "clock skew allowed for `exp`, `nbf`, `iat`, in seconds", 60.0, bounds=(0, 600))
    algorithms: tuple[str, ...] = _setting(
        _algorithms, "allowed JWS algorithms; symmetric ones are refused at start-up", ("RS256",)
    )
    require_typ: bool = _setting(
        _bool, "require `typ: at+jwt` (RFC 9068), so ID tokens are never accepted as access tokens", True
    )
    realm: str = _setting(_realm, "the realm of the `WWW-Authenticate` challenge", "authgear")
    allow_insecure_http: bool = _setting(
        _bool, "allow a plain-http endpoint that is not on loopback (never in production)", False
    )
    jwks_cache_ttl: float = _setting(_number, "seconds before the JWKS is refreshed", 300.0, bounds=(1, 86400))
    jwks_refetch_cooldown: float = _setting(
        _number, "minimum seconds between refetches caused by an unknown `kid`", 30.0, bounds=(0, 3600)
    )
    jwks_max_stale: float = _setting(
        _number,
        "how long the last good keys serve while the JWKS endpoint fails; then 503",
        3600.0,
        bounds=(0, 7 * 86400),
    )
    http_timeout: float = _setting(
        _number, "total deadline of each call to Authgear, in seconds", 5.0, bounds=(0.01, 120)
    )
    max_header_bytes: int = _setting(
        _number,
        "largest accepted `Authorization` header (and token); larger is a 400",
        8192,
        bounds=(256, 65536),
    )
    token_cache_size: int = _setting(
        _number, "verified tokens remembered until their `exp` (0 disables)", 10_000, bounds=(0, 10_000_000)
    )
    resolver_url: str = _setting(
        _derived_url,
        "where the resolver is (e.g. an internal address); `Host` stays Authgear's",
        "",
        shown_default="`ENDPOINT/_resolver/resolve`",
    )
    resolver_cache_ttl: float = _setting(
        _number,
        "seconds a positive answer is reused: **this is the revocation delay** of resolver and auto modes",
        60.0,
        bounds=(0.001, 3600),
    )
    resolver_negative_ttl: float = _setting(
        _number, 'seconds a "not authenticated" answer is reused (0: never)', 5.0, bounds=(0, 60)
    )
    cache: str = _setting(
        _cache,
        "the shared level of the resolver cache: `memory` (per process, bounded), `sqlite:///path/to/file` (per host), "
        "`redis://host:6379/0` (every host; `pip install 'flask-authgear[redis]'`)",
        "memory",
    )
    cache_secret: str | None = _setting(
        _cache_secret,
        "key of the HMAC; set the same value (16+ characters) on every process that shares a sqlite or Redis "
        "cache, or they cannot read each other's entries",
        None,
        shown_default="random per process",
        secret=True,
    )
    resolver_local_cache_size: int = _setting(
        _number,
        "answers kept in process (0 disables; the memory store is bounded by the same number, at least 1000)",
        10_000,
        bounds=(0, 10_000_000),
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        _networks,
        "IPs or CIDRs of the proxy whose `X-Authgear-*` headers are believed",
        (),
        shown_default="none (required in proxy mode)",
    )
    csrf_protection: bool = _setting(_bool, "refuse cross-site state-changing requests authenticated by a cookie", True)
    trusted_origins: tuple[str, ...] = _setting(
        _origins, "origins (`https://app.example.com`) allowed to send them anyway", ()
    )
    webhook_secret: tuple[str, ...] = _setting(
        secret_list,
        "secrets that sign Authgear's webhook calls; several (comma-separated) during a rotation",
        (),
        secret=True,
    )
    labels: InitVar[Mapping[str, str] | None] = None

    def __post_init__(self, labels: Mapping[str, str] | None) -> None:
        names = labels or {}

        def label(name: str) -> str:
            return names.get(name, name)

        for f in fields(self):
            spec: SettingSpec = f.metadata["setting"]
            value = spec.parse(getattr(self, f.name), label(f.name))
            if spec.bounds is not None:
                low, high = spec.bounds
                if not low <= value <= high:
                    raise ConfigurationError(f"{label(f.name)} must be between {_num(low)} and {_num(high)}")
            # The annotation is the table's type column (a string, under ``from __future__ import annotations``).
            object.__setattr__(self, f.name, int(value) if f.type == "int" else value)
        _cross_check(self, label)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], prefix: str = CONFIG_PREFIX, **overrides: Any) -> Settings:
        """Build settings from ``AUTHGEAR_*`` keys (e.g. Flask's ``app.config``); keyword overrides win.

        Other ``AUTHGEAR_*`` keys are ignored, since other Authgear tools read theirs (``AUTHGEAR_CLIENT_ID`` ...)
        from the same config; one that is nearly a setting's name (``AUTHGEAR_AUDIANCE``) gets a warning.
        """
        values: dict[str, Any] = {}
        # Messages name each setting as it is spelt in this mapping, or as a keyword when given as one.
        labels = {name: f"{prefix}{name.upper()}" for name in SETTING_NAMES}
        for key, value in config.items():
            if not (isinstance(key, str) and key.startswith(prefix)):
                continue
            name = key[len(prefix) :].lower()
            if name in SETTING_NAMES:
                values[name], labels[name] = value, key
            elif guess := _near_miss(name):
                warnings.warn(
                    f"{key} is not a flask-authgear setting and is ignored; did you mean {prefix}{guess.upper()}?",
                    UserWarning,
                    stacklevel=_caller_outside_package(),
                )
        _check_keywords(overrides)
        labels.update((name, name) for name in overrides)
        values.update(overrides)
        return cls._build(values, labels, f"{prefix}ENDPOINT")

    @classmethod
    def from_keywords(cls, **options: Any) -> Settings:
        """Build settings from lowercase keyword arguments, naming an unknown or missing one readably."""
        _check_keywords(options)
        return cls._build(options, {}, "endpoint=")

    @classmethod
    def _build(cls, values: dict[str, Any], labels: dict[str, str], endpoint_name: str) -> Settings:
        if "endpoint" not in values:
            raise ConfigurationError(
                f"{endpoint_name} is required (the Authgear project origin, e.g. https://myapp.authgear.cloud)"
            )
        return cls(**values, labels=labels)

    @property
    def authgear_host(self) -> str:
        """The Host header Authgear expects: it picks the project by host."""
        return urlsplit(self.endpoint).netloc


#: The names a setting can be given by (lowercase keywords; ``AUTHGEAR_`` + upper case in a config mapping).
SETTING_NAMES = frozenset(f.name for f in fields(Settings))


def _near_miss(name: str) -> str | None:
    """The setting ``name`` is probably a misspelling of, if any (``audiance`` -> ``audience``)."""
    # 0.8 catches a letter or two; Authgear's own keys (client_secret vs cache_secret: 0.72) stay below it.
    close = difflib.get_close_matches(name, SETTING_NAMES, n=1, cutoff=0.8)
    return close[0] if close else None


def _caller_outside_package() -> int:
    """The ``stacklevel`` of the nearest caller outside flask_authgear, so a warning names the user's own line.

    ``Authgear(app)`` reaches :meth:`Settings.from_mapping` through ``init_app``; a fixed level would name one of
    those instead.
    """
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == __package__:
        frame, level = frame.f_back, level + 1
    return level


def _check_keywords(options: Mapping[str, Any]) -> None:
    """Unknown keyword arguments are an error: they are code, and a typo must not fall back to a default."""
    for name in options:
        if name not in SETTING_NAMES:
            guess = _near_miss(name)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ConfigurationError(f"unknown setting {name!r}{hint}")


def _cross_check(s: Settings, label: Callable[[str], str]) -> None:
    """The rules that tie settings together, after each value passed its own check; fills derived defaults."""

    def https(name: str) -> str:
        return _require_https(getattr(s, name), label(name), s.allow_insecure_http, label("allow_insecure_http"))

    parts = urlsplit(https("endpoint"))
    if parts.path not in ("", "/"):
        raise ConfigurationError(f"{label('endpoint')} must be the project origin, without a path")
    # Host names are case-insensitive; Authgear writes its origin (``iss``) in lowercase.
    endpoint = f"{parts.scheme}://{parts.netloc.lower()}"
    object.__setattr__(s, "endpoint", endpoint)
    # The issuer is compared exactly with ``iss`` and with the discovery document's ``issuer``.
    object.__setattr__(s, "issuer", https("issuer") if s.issuer else endpoint)
    object.__setattr__(s, "audience", s.audience or (endpoint,))
    if s.jwks_uri is not None:
        https("jwks_uri")
    object.__setattr__(s, "resolver_url", https("resolver_url") if s.resolver_url else f"{endpoint}/_resolver/resolve")
    if s.mode == "proxy" and not s.trusted_proxies:
        raise ConfigurationError(
            f"proxy mode needs {label('trusted_proxies')}: the addresses (IPs or CIDRs) of the proxy that sets "
            "X-Authgear-*"
        )


def _num(x: float) -> str:
    """A bound as people write it: ``10000000``, ``0.01``."""
    return str(int(x)) if x == int(x) else f"{x:g}"


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return "`[" + ", ".join(f'"{v}"' for v in default) + "]`" if default else "none"
    return f"`{_num(default)}`" if isinstance(default, float) else f"`{default}`"


def settings_markdown() -> str:
    """The README's table of settings, rendered from :class:`Settings` so that the two cannot drift apart."""
    rows = [
        "| setting (`AUTHGEAR_*` in `app.config`, lowercase keyword elsewhere) | default | meaning |",
        "|---|---|---|",
    ]
    for f in fields(Settings):
        spec: SettingSpec = f.metadata["setting"]
        bounds = f"; {_num(spec.bounds[0])} to {_num(spec.bounds[1])}" if spec.bounds else ""
        rows.append(f"| `{f.name.upper()}` | {spec.shown_default or _shown(f.default)} | {spec.meaning}{bounds} |")
    return "\n".join(rows) + "\n"
