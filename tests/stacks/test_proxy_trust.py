"""Proxy mode: X-Authgear-* headers are believed only from trusted proxy addresses, only on exact ``true``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask

from flask_authgear import (
    ConfigurationError,
    ForbiddenError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
    Settings,
    Verifier,
)
from flask_authgear.core import RequestData
from flask_authgear.core.headers import ANSWER_HEADERS

ENDPOINT = "https://myapp.authgear.cloud"
VALID = {
    "x-authgear-session-valid": "true",
    "x-authgear-user-id": "u-42",
    "x-authgear-user-anonymous": "false",
    "x-authgear-user-verified": "true",
    "x-authgear-user-can-reauthenticate": "false",
    "x-authgear-user-roles": "admin,billing",
    "x-authgear-session-amr": "pwd otp",
    "x-authgear-session-authenticated-at": "1700000000",
}


def verifier(**overrides: Any) -> Verifier:
    values: dict[str, Any] = {"endpoint": ENDPOINT, "mode": "proxy", "trusted_proxies": "10.0.0.5, 192.168.1.0/24"}
    values.update(overrides)
    return Verifier(Settings(**values))


def request(remote_addr: str | None = "10.0.0.5", headers: dict[str, str] | None = None, **kw: Any) -> RequestData:
    return RequestData(remote_addr=remote_addr, proxy_headers=VALID if headers is None else headers, **kw)


def test_trusted_proxy_headers_give_the_user() -> None:
    user = verifier().authenticate(request())
    assert user.id == "u-42"
    assert user.roles == {"admin", "billing"}
    assert user.amr == ("pwd", "otp")
    assert (user.is_verified, user.is_anonymous, user.can_reauthenticate) == (True, False, False)
    assert user.authenticated_at == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    assert user.source == "proxy"


@pytest.mark.parametrize("remote_addr", ["10.0.0.5", "192.168.1.77", "::ffff:10.0.0.5", "::ffff:192.168.1.1"], ids=str)
def test_addresses_inside_trusted_proxies_are_trusted(remote_addr: str) -> None:
    assert verifier().authenticate(request(remote_addr)).id == "u-42"


@pytest.mark.parametrize(
    "remote_addr",
    ["10.0.0.6", "192.168.2.1", "127.0.0.1", "::1", "", None, "not-an-ip", "10.0.0.5:1234", "fe80::1%eth0"],
    ids=str,
)
def test_headers_from_anywhere_else_are_ignored(remote_addr: str | None) -> None:
    with pytest.raises(MissingCredentialsError):
        verifier().authenticate(request(remote_addr))
    with pytest.raises(InvalidTokenError):  # credentials were sent, but no trusted proxy vouched for them
        verifier().authenticate(request(remote_addr, authorization="Bearer abc"))


def test_ipv6_networks() -> None:
    v = verifier(trusted_proxies=["2001:db8::/32"])
    assert v.authenticate(request("2001:db8::1")).id == "u-42"
    with pytest.raises(MissingCredentialsError):
        v.authenticate(request("2001:db9::1"))


@pytest.mark.parametrize("value", ["false", None], ids=["false", "absent"])
def test_a_proxy_that_says_not_authenticated_is_401(value: str | None) -> None:
    headers = {} if value is None else {"x-authgear-session-valid": value}
    with pytest.raises(MissingCredentialsError):
        verifier().authenticate(request(headers=headers))
    with pytest.raises(InvalidTokenError):
        verifier().authenticate(request(headers=headers, cookie="session=x"))


@pytest.mark.parametrize("value", ["True", "TRUE", "1", "yes", " true", "true ", "true,true"])
def test_only_the_exact_value_true_authenticates(value: str) -> None:
    with pytest.raises((ProviderUnavailableError, InvalidTokenError, MissingCredentialsError)):
        verifier().authenticate(request(headers=VALID | {"x-authgear-session-valid": value}))


@pytest.mark.parametrize(
    "headers",
    [
        {"x-authgear-session-valid": "true"},
        {"x-authgear-session-valid": "true", "x-authgear-user-id": ""},
        {"x-authgear-user-id": "u-42"},
        VALID | {"x-authgear-session-authenticated-at": "soon"},
    ],
    ids=["no-user-id", "empty-user-id", "user-without-valid", "bad-time"],
)
def test_headers_authgear_never_sends_are_503(headers: dict[str, str]) -> None:
    with pytest.raises(ProviderUnavailableError):
        verifier().authenticate(request(headers=headers))


def test_proxy_mode_requires_trusted_proxies() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        Settings(endpoint=ENDPOINT, mode="proxy")
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        Settings(endpoint=ENDPOINT, mode="proxy", trusted_proxies=["10.0.0.300"])


def test_cookie_sessions_behind_the_proxy_get_the_csrf_rule() -> None:
    forged = request(method="POST", cookie="session=x", origin="https://evil.example", host="api.example.com")
    with pytest.raises(ForbiddenError):
        verifier().authenticate(forged)
    same_site = request(method="POST", cookie="session=x", origin="https://api.example.com", host="api.example.com")
    assert verifier().authenticate(same_site).id == "u-42"


def test_every_resolver_header_is_listed_for_proxies_to_overwrite() -> None:
    assert set(VALID) == set(ANSWER_HEADERS)


# -- through the Flask adapter ----------------------------------------------------------------------------


@pytest.fixture
def app() -> Iterator[Flask]:
    from flask_authgear import Authgear, current_user, require_auth

    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_MODE="proxy", AUTHGEAR_TRUSTED_PROXIES="10.0.0.5")
    Authgear(app)

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"id": current_user.id, "roles": sorted(current_user.roles)}

    yield app


def _headers() -> dict[str, str]:
    return {name.title(): value for name, value in VALID.items()}


def test_flask_app_believes_its_proxy(app: Flask) -> None:
    response = app.test_client().get("/me", headers=_headers(), environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert response.status_code == 200
    assert response.get_json() == {"id": "u-42", "roles": ["admin", "billing"]}


def test_flask_app_ignores_forged_headers_from_a_client(app: Flask) -> None:
    response = app.test_client().get("/me", headers=_headers(), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 401
    assert "u-42" not in response.get_data(as_text=True)


def test_unknown_x_authgear_headers_are_not_read() -> None:
    unknown = {"x-authgear-session-acr": "high", "x-authgear-anything": "1"}
    with pytest.raises(MissingCredentialsError):
        verifier().authenticate(request(headers=unknown))
    assert verifier().authenticate(request(headers=VALID | unknown)).id == "u-42"
