"""Authgear's ``X-Authgear-*`` answer, read by one parser for the resolver and for proxies: what Authgear
sends is read as it means, and what only an old Caddy sends (unexpanded placeholders) is a 503."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flask_authgear import ProviderUnavailableError, Settings, Verifier
from flask_authgear.core import RequestData
from flask_authgear.core.headers import MalformedAnswer, parse_answer
from tests.support.auth import bearer_request
from tests.support.recorder import ScriptedResolver, valid

ENDPOINT = "https://myapp.authgear.cloud"
PROXY = "10.0.0.5"
VALID = {"x-authgear-session-valid": "true", "x-authgear-user-id": "u-7"}


def _caddy(name: str) -> str:
    """What Caddy before 2.9 forwards for a header the resolver did not send."""
    return "{http.reverse_proxy.header." + name + "}"


PLACEHOLDERS = {
    "roles": {**VALID, "x-authgear-user-roles": _caddy("X-Authgear-User-Roles")},
    "amr": {**VALID, "x-authgear-session-amr": _caddy("X-Authgear-Session-Amr")},
    "role-among-others": {**VALID, "x-authgear-user-roles": "reader," + _caddy("X-Authgear-User-Roles")},
    "user-id": {"x-authgear-session-valid": "true", "x-authgear-user-id": _caddy("X-Authgear-User-Id")},
    "session-valid": {"x-authgear-session-valid": _caddy("X-Authgear-Session-Valid")},
}


@pytest.mark.parametrize("headers", PLACEHOLDERS.values(), ids=PLACEHOLDERS.keys())
def test_an_unexpanded_caddy_placeholder_is_never_read_as_a_value(headers: dict[str, str]) -> None:
    with pytest.raises(MalformedAnswer):
        parse_answer(headers)


def test_a_placeholder_from_a_trusted_proxy_is_503_not_a_role() -> None:
    verifier = Verifier(Settings(endpoint=ENDPOINT, mode="proxy", trusted_proxies=PROXY))
    request = RequestData(remote_addr=PROXY, proxy_headers=PLACEHOLDERS["roles"])
    with pytest.raises(ProviderUnavailableError):
        verifier.authenticate(request)


def test_a_placeholder_from_the_resolver_is_503_and_not_cached(make_verifier: Callable[..., Verifier]) -> None:
    answer = valid("u-7", X_Authgear_User_Roles=_caddy("X-Authgear-User-Roles"))
    with ScriptedResolver(script=lambda r: answer) as resolver:
        verifier = make_verifier(resolver_url=resolver.url)
        for _ in range(2):
            with pytest.raises(ProviderUnavailableError):
                verifier.authenticate(bearer_request("opaque"))
        assert resolver.calls == 2
