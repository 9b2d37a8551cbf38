"""One validated settings object, built from keyword arguments or from Flask's ``app.config``.

Every value is checked once, at start-up, so that a typo in production configuration is a readable
exception before the first request instead of a 500 (or worse, an open door) later.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
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


def _is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, allow_insecure_http: bool) -> str:
    """Check that ``url`` is an absolute https URL (http only for loopback or by opt-in)."""
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
    if parts.scheme == "http" and not (allow_insecure_http or _is_loopback_host(hostname)):
        raise ConfigurationError(
            f"{what} uses plain http on a non-loopback host; use https, or set allow_insecure_http=True"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(f"{what} has an invalid port") from exc
    return url


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be a string or a list of strings")
    out = tuple(value)
    if not all(isinstance(v, str) and v for v in out):
        raise ConfigurationError(f"{what} must contain only non-empty strings")
    return out


def _number(value: Any, what: str, *, minimum: float = 0, maximum: float = math.inf) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigurationError(f"{what} must be a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number")
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{what} must be between {minimum:g} and {maximum:g}")
    return float(value)


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigurationError(f"{what} must be a boolean")


@dataclass(frozen=True)
class Settings:
    """Validated settings shared by the core and both adapters.

    Build with keyword arguments (``Settings(endpoint=...)``) or from a mapping of ``AUTHGEAR_*`` keys with
    :meth:`from_mapping`. Derived defaults (issuer, audience, resolver URL) are filled in here, once.
    """

    endpoint: str
    mode: Mode = "jwt"
    #: Accepted ``aud`` values; a token is accepted when any of its audiences is listed. Default: [endpoint origin].
    audience: tuple[str, ...] = ()
    #: Expected ``iss``; default the endpoint origin. Set it for projects served on a custom domain.
    issuer: str = ""
    #: JWKS location; default: the ``jwks_uri`` of the endpoint's OIDC discovery document.
    jwks_uri: str | None = None
    #: Allowed clock skew in seconds for ``exp``, ``nbf`` and ``iat``.
    leeway: float = 60.0
    algorithms: tuple[str, ...] = ("RS256",)
    #: Require the RFC 9068 ``typ`` header (``at+jwt``) so that ID tokens are never taken for access tokens.
    require_typ: bool = True
    realm: str = "authgear"
    #: Allow plain http for a non-loopback endpoint (never do this in production).
    allow_insecure_http: bool = False
    #: Seconds a fetched JWKS is used before it is refreshed.
    jwks_cache_ttl: float = 300.0
    #: Minimum seconds between two JWKS fetches caused by unknown ``kid`` values.
    jwks_refetch_cooldown: float = 30.0
    #: Seconds the last good JWKS keeps serving while the JWKS endpoint fails; after that requests get 503.
    jwks_max_stale: float = 3600.0
    #: Deadline in seconds for each call to Authgear (discovery, JWKS, resolver).
    http_timeout: float = 5.0
    #: Largest accepted ``Authorization`` header, in bytes.
    max_header_bytes: int = 8192
    #: Verified tokens remembered, so a repeated token skips the signature check (0 disables).
    token_cache_size: int = 10_000
    # Resolver mode.
    resolver_url: str = ""
    #: Seconds a resolver answer is reused: this is the revocation delay of resolver mode.
    resolver_cache_ttl: float = 60.0
    #: Seconds a "not authenticated" resolver answer is reused.
    resolver_negative_ttl: float = 5.0
    #: Where resolver answers are cached: ``memory`` (default), ``sqlite:///path`` or ``redis://host:port/db``.
    cache: str = "memory"
    #: Secret that keys the hash of credentials used as cache key; default a random per-process secret.
    #: Set the same value on every worker that shares a sqlite or Redis cache.
    cache_secret: str | None = None
    #: In-process resolver answers kept in front of the shared cache (0 disables).
    resolver_local_cache_size: int = 10_000
    # Proxy mode.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Cookie sessions (resolver and auto modes).
    #: Refuse cookie-authenticated state-changing requests that come cross-site.
    csrf_protection: bool = True
    #: Origins (``https://app.example.com``) allowed to send cookie-authenticated state-changing requests.
    trusted_origins: tuple[str, ...] = ()
    # Webhooks.
    #: Secrets that sign Authgear's webhook bodies; several during a rotation. Empty: webhooks are refused.
    webhook_secret: tuple[str, ...] = field(default=(), repr=False)  # never printed with the settings
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        setter = object.__setattr__
        insecure = _bool(self.allow_insecure_http, "allow_insecure_http")
        setter(self, "allow_insecure_http", insecure)
        endpoint = check_url(self.endpoint, "endpoint", insecure)
        parts = urlsplit(endpoint)
        if parts.path not in ("", "/"):
            raise ConfigurationError("endpoint must be the project origin, without a path")
        # Host names are case-insensitive; Authgear writes its origin (``iss``) in lowercase.
        endpoint = f"{parts.scheme}://{parts.netloc.lower()}"
        setter(self, "endpoint", endpoint)

        mode = self.mode.strip().lower() if isinstance(self.mode, str) else self.mode
        if mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        setter(self, "mode", mode)

        # The issuer is compared exactly with ``iss`` and with the discovery document's ``issuer``.
        issuer = check_url(self.issuer, "issuer", insecure) if self.issuer else endpoint
        setter(self, "issuer", issuer)
        audience = _str_list(self.audience, "audience") if self.audience else (endpoint,)
        setter(self, "audience", audience)
        if self.jwks_uri is not None:
            setter(self, "jwks_uri", check_url(self.jwks_uri, "jwks_uri", insecure))

        algorithms = _str_list(self.algorithms, "algorithms")
        if not algorithms:
            raise ConfigurationError("algorithms must not be empty")
        for alg in algorithms:
            if alg in SYMMETRIC_ALGORITHMS:
                raise ConfigurationError(
                    f"algorithm {alg} is not allowed: tokens must be signed with an asymmetric key from the JWKS"
                )
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise ConfigurationError(f"unknown algorithm {alg!r}")
        setter(self, "algorithms", algorithms)

        setter(self, "require_typ", _bool(self.require_typ, "require_typ"))
        setter(self, "csrf_protection", _bool(self.csrf_protection, "csrf_protection"))
        if (
            not isinstance(self.realm, str)
            or not self.realm
            or not (self.realm.isascii() and self.realm.isprintable())
            or any(c in self.realm for c in '"\\')
        ):
            raise ConfigurationError("realm must be printable ASCII, non-empty, without quotes or backslashes")

        setter(self, "leeway", _number(self.leeway, "leeway", maximum=600))
        setter(self, "jwks_cache_ttl", _number(self.jwks_cache_ttl, "jwks_cache_ttl", minimum=1, maximum=86400))
        setter(
            self,
            "jwks_refetch_cooldown",
            _number(self.jwks_refetch_cooldown, "jwks_refetch_cooldown", maximum=3600),
        )
        setter(self, "jwks_max_stale", _number(self.jwks_max_stale, "jwks_max_stale", maximum=7 * 86400))
        setter(self, "http_timeout", _number(self.http_timeout, "http_timeout", minimum=0.01, maximum=120))
        setter(
            self,
            "max_header_bytes",
            int(_number(self.max_header_bytes, "max_header_bytes", minimum=256, maximum=65536)),
        )
        setter(
            self,
            "token_cache_size",
            int(_number(self.token_cache_size, "token_cache_size", maximum=10_000_000)),
        )

        resolver_url = self.resolver_url or f"{endpoint}/_resolver/resolve"
        setter(self, "resolver_url", check_url(resolver_url, "resolver_url", insecure))
        setter(
            self,
            "resolver_cache_ttl",
            _number(self.resolver_cache_ttl, "resolver_cache_ttl", minimum=0.001, maximum=3600),
        )
        setter(
            self,
            "resolver_negative_ttl",
            _number(self.resolver_negative_ttl, "resolver_negative_ttl", maximum=60),
        )
        setter(
            self,
            "resolver_local_cache_size",
            int(_number(self.resolver_local_cache_size, "resolver_local_cache_size", maximum=10_000_000)),
        )
        if not isinstance(self.cache, str) or not (
            self.cache == "memory" or self.cache.startswith(("sqlite:///", "redis://", "rediss://", "unix://"))
        ):
            raise ConfigurationError("cache must be 'memory', 'sqlite:///path' or 'redis://host:port/db'")
        if self.cache_secret is not None and (not isinstance(self.cache_secret, str) or len(self.cache_secret) < 16):
            raise ConfigurationError("cache_secret must be a string of at least 16 characters")

        setter(self, "trusted_proxies", _networks(self.trusted_proxies))
        if self.mode == "proxy" and not self.trusted_proxies:
            raise ConfigurationError(
                "proxy mode needs trusted_proxies: the addresses (IPs or CIDRs) of the proxy that sets X-Authgear-*"
            )
        origins = _str_list(self.trusted_origins, "trusted_origins") if self.trusted_origins else ()
        setter(self, "trusted_origins", tuple(o.rstrip("/").lower() for o in origins))
        # A secret is used whole, never split on spaces or commas.
        secrets = (self.webhook_secret,) if isinstance(self.webhook_secret, str) else tuple(self.webhook_secret or ())
        if not all(isinstance(s, str) and s for s in secrets):
            raise ConfigurationError("webhook_secret must be a non-empty string or a list of them")
        setter(self, "webhook_secret", secrets)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], prefix: str = CONFIG_PREFIX, **overrides: Any) -> Settings:
        """Build settings from ``AUTHGEAR_*`` keys (e.g. Flask's ``app.config``); keyword overrides win."""
        values: dict[str, Any] = {}
        for key, value in config.items():
            if isinstance(key, str) and key.startswith(prefix):
                name = key[len(prefix) :].lower()
                if name not in SETTING_NAMES:
                    raise ConfigurationError(f"unknown setting {key}")
                values[name] = value
        values.update(overrides)
        return cls._from_options(values, f"{prefix}ENDPOINT")

    @classmethod
    def from_keywords(cls, **options: Any) -> Settings:
        """Build settings from lowercase keyword arguments, naming an unknown or missing one readably."""
        return cls._from_options(options, "endpoint=")

    @classmethod
    def _from_options(cls, options: dict[str, Any], endpoint_name: str) -> Settings:
        for name in options:
            if name not in SETTING_NAMES:
                raise ConfigurationError(f"unknown setting {name!r}")
        if "endpoint" not in options:
            raise ConfigurationError(
                f"{endpoint_name} is required (the Authgear project origin, e.g. https://myapp.authgear.cloud)"
            )
        return cls(**options)

    @property
    def authgear_host(self) -> str:
        """The Host header Authgear expects: it picks the project by host."""
        return urlsplit(self.endpoint).netloc


#: The names a setting can be given by (lowercase keywords; ``AUTHGEAR_`` + upper case in a config mapping).
SETTING_NAMES = frozenset(f.name for f in fields(Settings) if f.name != "extra")


def _networks(value: Any) -> tuple[IPNetwork, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    out: list[IPNetwork] = []
    for item in value or ():
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            out.append(item)
            continue
        try:
            out.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ConfigurationError(f"trusted_proxies: {item!r} is not an IP address or CIDR") from None
    return tuple(out)
