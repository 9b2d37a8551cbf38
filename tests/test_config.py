"""Settings: every value is validated at start-up, with a readable message naming the setting."""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import math
from typing import Any

import pytest

from flask_authgear import ConfigurationError, Settings

ENDPOINT = "https://myapp.authgear.cloud"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"endpoint": ENDPOINT}
    values.update(overrides)
    return Settings(**values)


# -- defaults and derived values ----------------------------------------------------------------------------


def test_defaults_are_derived_from_the_endpoint() -> None:
    s = settings()
    assert s.mode == "jwt"
    assert s.issuer == ENDPOINT
    assert s.audience == (ENDPOINT,)
    assert s.jwks_uri is None  # taken from discovery
    assert s.resolver_url == f"{ENDPOINT}/_resolver/resolve"
    assert s.algorithms == ("RS256",)
    assert s.require_typ is True
    assert 0 < s.leeway <= 300
    assert s.jwks_cache_ttl == 300
    assert 10 <= s.jwks_refetch_cooldown <= 60
    assert s.max_header_bytes == 8192
    assert s.authgear_host == "myapp.authgear.cloud"


@pytest.mark.parametrize(
    "given",
    ["https://myapp.authgear.cloud/", " https://myapp.authgear.cloud ", "https://MyApp.Authgear.Cloud"],
    ids=["trailing-slash", "surrounding-spaces", "uppercase-host"],
)
def test_endpoint_is_normalised_to_the_origin(given: str) -> None:
    s = settings(endpoint=given)
    assert s.endpoint == ENDPOINT
    assert s.issuer == ENDPOINT


def test_custom_domain_issuer_and_audience() -> None:
    s = settings(issuer="https://auth.example.com", audience="https://auth.example.com")
    assert s.issuer == "https://auth.example.com"
    assert s.audience == ("https://auth.example.com",)
    # The endpoint still decides where discovery and the resolver are.
    assert s.resolver_url == f"{ENDPOINT}/_resolver/resolve"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["https://a.example", "https://b.example"], ("https://a.example", "https://b.example")),
        ("https://a.example https://b.example", ("https://a.example", "https://b.example")),
        ("https://a.example,https://b.example", ("https://a.example", "https://b.example")),
        (("api://x",), ("api://x",)),
    ],
    ids=["list", "space-separated", "comma-separated", "tuple"],
)
def test_audience_forms(given: Any, expected: tuple[str, ...]) -> None:
    assert settings(audience=given).audience == expected


def test_explicit_urls_are_kept() -> None:
    s = settings(jwks_uri="https://keys.example.com/jwks", resolver_url="https://r.example.com/_resolver/resolve")
    assert s.jwks_uri == "https://keys.example.com/jwks"
    assert s.resolver_url == "https://r.example.com/_resolver/resolve"


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000", "http://app.localhost"],
    ids=["ipv4-loopback", "localhost", "ipv6-loopback", "dot-localhost"],
)
def test_plain_http_is_allowed_on_loopback(endpoint: str) -> None:
    assert settings(endpoint=endpoint).endpoint == endpoint


def test_plain_http_elsewhere_needs_the_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        settings(endpoint="http://myapp.authgear.cloud")
    s = settings(endpoint="http://myapp.authgear.cloud", allow_insecure_http=True)
    assert s.endpoint == "http://myapp.authgear.cloud"


def test_algorithms_accept_asymmetric_ones() -> None:
    s = settings(algorithms=["RS256", "ES256", "EdDSA", "PS256"])
    assert s.algorithms == ("RS256", "ES256", "EdDSA", "PS256")
    assert settings(algorithms="RS256 ES384").algorithms == ("RS256", "ES384")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("False", False), ("off", False)],
)
def test_booleans_from_strings(given: str, expected: bool) -> None:
    assert settings(require_typ=given).require_typ is expected


def test_numbers_from_strings() -> None:
    s = settings(leeway="30", jwks_cache_ttl="60", max_header_bytes="4096")
    assert (s.leeway, s.jwks_cache_ttl, s.max_header_bytes) == (30.0, 60.0, 4096)


def test_trusted_proxies_and_origins_forms() -> None:
    s = settings(trusted_proxies="10.0.0.1, 192.168.0.0/16", trusted_origins="https://App.example.com/")
    assert s.trusted_proxies == (ipaddress.ip_network("10.0.0.1/32"), ipaddress.ip_network("192.168.0.0/16"))
    assert s.trusted_origins == ("https://app.example.com",)
    assert settings(trusted_proxies=[ipaddress.ip_network("::1/128")]).trusted_proxies == (
        ipaddress.ip_network("::1/128"),
    )


def test_the_constructor_takes_the_settings_only() -> None:
    assert list(inspect.signature(Settings).parameters) == [f.name for f in dataclasses.fields(Settings)]
    with pytest.raises(TypeError):
        Settings()  # type: ignore[call-arg]  # the endpoint is required


def test_replace_checks_the_new_values_and_keeps_the_rest() -> None:
    s = settings(issuer="https://auth.example.com", trusted_proxies="10.0.0.1")
    smaller = dataclasses.replace(s, token_cache_size="0")
    assert smaller.token_cache_size == 0
    assert smaller == dataclasses.replace(s, token_cache_size=0)
    assert (smaller.issuer, smaller.trusted_proxies) == (s.issuer, s.trusted_proxies)
    with pytest.raises(ConfigurationError, match=r"^leeway must be between 0 and 600"):
        dataclasses.replace(s, leeway=601)


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.issuer = "https://evil.example"  # type: ignore[misc]


# -- validation: each bad value is a readable ConfigurationError ---------------------------------------------


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"endpoint": ""}, "endpoint must be a non-empty URL"),
    ({"endpoint": None}, "endpoint must be a non-empty URL"),
    ({"endpoint": "myapp.authgear.cloud"}, "endpoint must be an absolute http"),
    ({"endpoint": "ftp://myapp.authgear.cloud"}, "endpoint must be an absolute http"),
    ({"endpoint": "https://"}, "endpoint must be an absolute http"),
    ({"endpoint": "https://user:pw@myapp.authgear.cloud"}, "must not carry credentials"),
    ({"endpoint": "https://myapp.authgear.cloud/?x=1"}, "query string"),
    ({"endpoint": "https://myapp.authgear.cloud/#top"}, "query string or fragment"),
    ({"endpoint": "https://myapp.authgear.cloud/app"}, "without a path"),
    ({"endpoint": "https://myapp.authgear.cloud:99999"}, "invalid port"),
    ({"endpoint": "https://[::1"}, "endpoint is not a valid URL"),
    ({"endpoint": "http://localhost:abc"}, "invalid port"),
    ({"endpoint": "https://my app.authgear.cloud"}, "printable ASCII"),
    ({"endpoint": "https://myapp.authgear.cloud\r\nX: y"}, "printable ASCII"),
    ({"endpoint": "https://myäpp.authgear.cloud"}, "printable ASCII"),
    ({"endpoint": "http://myapp.authgear.cloud"}, "plain http on a non-loopback host"),
    ({"endpoint": "http://127.0.0.1.example.com"}, "plain http on a non-loopback host"),
    ({"endpoint": "HTTP://myapp.authgear.cloud"}, "plain http on a non-loopback host"),
    ({"jwks_uri": "http://keys.example.com/jwks"}, "jwks_uri uses plain http"),
    ({"jwks_uri": "keys"}, "jwks_uri must be an absolute"),
    ({"resolver_url": "http://r.example.com/_resolver/resolve"}, "resolver_url uses plain http"),
    ({"issuer": "auth.example.com"}, "issuer must be an absolute"),
    ({"issuer": "http://auth.example.com"}, "issuer uses plain http"),
    ({"issuer": 42}, "issuer must be a non-empty URL string"),
    ({"mode": "oauth"}, "mode must be one of jwt, resolver, proxy, auto"),
    ({"mode": ""}, "mode must be one of"),
    ({"mode": None}, "mode must be one of"),
    ({"algorithms": ["HS256"]}, "'HS256' is not allowed: tokens must be signed with an asymmetric key"),
    ({"algorithms": ["RS256", "HS512"]}, "'HS512' is not allowed"),
    ({"algorithms": ["none"]}, "'none' is not allowed"),
    ({"algorithms": ["RS257"]}, "'RS257' is not allowed"),
    ({"algorithms": []}, "algorithms must not be empty"),
    ({"algorithms": ""}, "algorithms must not be empty"),
    ({"algorithms": [256]}, "algorithms must contain only non-empty strings"),
    ({"algorithms": 256}, "algorithms must be a string or a list"),
    ({"audience": ["https://a.example", ""]}, "audience must contain only non-empty strings"),
    ({"audience": [None]}, "audience must contain only non-empty strings"),
    ({"require_typ": "maybe"}, "require_typ must be a boolean"),
    ({"require_typ": None}, "require_typ must be a boolean"),
    ({"allow_insecure_http": 1}, "allow_insecure_http must be a boolean"),
    ({"realm": ""}, "realm must be printable ASCII"),
    ({"realm": 'a"b'}, "realm must be printable ASCII"),
    ({"realm": "a\\b"}, "realm must be printable ASCII"),
    ({"realm": "a\r\nb"}, "realm must be printable ASCII"),
    ({"realm": "réalm"}, "realm must be printable ASCII"),
    ({"trusted_proxies": "10.0.0.300"}, "trusted_proxies: '10.0.0.300' does not appear to be an IPv4 or IPv6 network"),
    ({"trusted_proxies": 10}, "trusted_proxies must be a list of IP addresses"),
    ({"mode": "proxy"}, "proxy mode needs trusted_proxies"),
    ({"trusted_origins": ["https://a.example", ""]}, "trusted_origins must contain only non-empty strings"),
    ({"cache": "memcached://cache:11211"}, "cache must be 'memory', 'sqlite:///path' or 'redis://"),
    ({"cache_secret": "too-short"}, "cache_secret must be a string of at least 16 characters"),
]


@pytest.mark.parametrize(
    ("overrides", "message"), INVALID, ids=[f"{k}={v!r}" for overrides, _ in INVALID for k, v in overrides.items()]
)
def test_invalid_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("?", r"\?")):
        settings(**overrides)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("leeway", -1),
        ("leeway", 601),
        ("leeway", math.nan),
        ("leeway", math.inf),
        ("leeway", True),
        ("leeway", "soon"),
        ("leeway", None),
        ("leeway", [1]),
        ("jwks_cache_ttl", 0),
        ("jwks_cache_ttl", 86401),
        ("jwks_refetch_cooldown", -5),
        ("jwks_max_stale", -1),
        ("http_timeout", 0),
        ("http_timeout", 121),
        ("max_header_bytes", 100),
        ("max_header_bytes", 10**6),
        ("token_cache_size", -1),
        ("resolver_cache_ttl", 0),
        ("resolver_negative_ttl", 61),
        ("resolver_local_cache_size", -1),
    ],
)
def test_invalid_numbers(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        settings(**{name: value})


def test_configuration_error_is_a_value_error() -> None:
    # Callers that validate input generically with ``except ValueError`` still catch it.
    assert issubclass(ConfigurationError, ValueError)


# -- load(config, environ={}): Flask's app.config ----------------------------------------------------------------------


def test_load_config_alone_reads_authgear_keys_and_ignores_others() -> None:
    config = {
        "AUTHGEAR_ENDPOINT": ENDPOINT,
        "AUTHGEAR_LEEWAY": 10,
        "AUTHGEAR_AUDIENCE": ["https://api.example.com"],
        "AUTHGEAR_REQUIRE_TYP": "false",
        "SECRET_KEY": "unrelated",
        "DEBUG": True,
    }
    s = Settings.load(config, environ={})
    assert s.endpoint == ENDPOINT
    assert s.leeway == 10.0
    assert s.audience == ("https://api.example.com",)
    assert s.require_typ is False


def test_load_config_alone_overrides_win() -> None:
    config = {"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_LEEWAY": 10}
    s = Settings.load(config, environ={}, leeway=5, issuer="https://auth.example.com")
    assert s.leeway == 5.0
    assert s.issuer == "https://auth.example.com"


def test_load_config_alone_endpoint_may_come_from_overrides() -> None:
    assert Settings.load({}, environ={}, endpoint=ENDPOINT).endpoint == ENDPOINT


def test_load_config_alone_reads_a_flask_config() -> None:
    from flask import Flask

    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_ALGORITHMS=["RS256", "ES256"])
    s = Settings.load(app.config, environ={})
    assert s.endpoint == ENDPOINT
    assert s.algorithms == ("RS256", "ES256")


def test_load_config_alone_requires_the_endpoint() -> None:
    with pytest.raises(ConfigurationError, match="AUTHGEAR_ENDPOINT is required"):
        Settings.load({"AUTHGEAR_MODE": "jwt"}, environ={})


def test_load_config_alone_refuses_unknown_overrides() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'leeway_seconds'"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT}, environ={}, leeway_seconds=1)


def test_load_config_alone_validates_values() -> None:
    with pytest.raises(ConfigurationError, match="AUTHGEAR_MODE must be one of"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_MODE": "magic"}, environ={})


def test_load_config_alone_lowercase_keys_are_case_normalised() -> None:
    # Only the value after the prefix is case-normalised: AUTHGEAR_Leeway is the leeway setting.
    s = Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_Leeway": 7}, environ={})
    assert s.leeway == 7.0


# -- webhook_secret -------------------------------------------------------------------------------------------

SECRET = "whsec-0123456789abcdef"


def test_webhook_secret_is_empty_by_default_and_needed_by_no_mode() -> None:
    assert settings().webhook_secret == ()
    for mode in ("jwt", "resolver", "auto"):
        assert settings(mode=mode).webhook_secret == ()
    assert settings(mode="proxy", trusted_proxies="10.0.0.1").webhook_secret == ()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (SECRET, (SECRET,)),
        ("old-secret,new-secret", ("old-secret", "new-secret")),
        (" old-secret , new-secret ", ("old-secret", "new-secret")),
        (["old-secret", "new-secret"], ("old-secret", "new-secret")),
        ((SECRET,), (SECRET,)),
        ("", ()),
        ([], ()),
    ],
    ids=["one", "comma-separated", "comma-and-spaces", "list", "tuple", "empty-string", "empty-list"],
)
def test_webhook_secret_forms(given: Any, expected: tuple[str, ...]) -> None:
    assert settings(webhook_secret=given).webhook_secret == expected


def test_webhook_secrets_from_the_environment_during_a_rotation() -> None:
    s = Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_WEBHOOK_SECRET": "old-secret,new-secret"}, environ={})
    assert s.webhook_secret == ("old-secret", "new-secret")


@pytest.mark.parametrize(
    "given",
    [[SECRET, ""], [SECRET, "  "], [SECRET, 5], f"{SECRET},,other", f"{SECRET},", 42, [SECRET.encode()]],
    ids=["empty-item", "blank-item", "number-item", "empty-between-commas", "trailing-comma", "number", "bytes"],
)
def test_bad_webhook_secrets_are_refused_without_showing_them(given: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^webhook_secret must") as caught:
        settings(webhook_secret=given)
    assert SECRET not in str(caught.value)
    assert "whsec" not in str(caught.value)


def test_secrets_are_never_shown_in_repr() -> None:
    s = settings(webhook_secret=["old-webhook-secret", SECRET], cache_secret="cache-secret-0123456789")
    assert "webhook-secret" not in repr(s)
    assert SECRET not in repr(s)
    assert "cache-secret-0123456789" not in repr(s)
    assert "myapp.authgear.cloud" in repr(s)
