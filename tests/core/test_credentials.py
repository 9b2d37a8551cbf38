"""Reading credentials: only ``Authorization: Bearer <token>``, strictly; nothing from the URL or the body."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from werkzeug.test import EnvironBuilder

from flask_authgear import InvalidRequestError, MissingCredentialsError, Settings, Verifier
from flask_authgear.core import RequestData, strip_proxy_headers
from flask_authgear.core.credentials import bearer_token
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer_request

MAX = 8192
FIXED_DESCRIPTIONS = {
    "The Authorization header is malformed.",
    "Only the Bearer authorization scheme is supported.",
    "The Authorization header is too large.",
}
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN}", TOKEN),
        (f"BEARER {TOKEN}", TOKEN),
        (f"BeArEr {TOKEN}", TOKEN),
        (f"Bearer    {TOKEN}", TOKEN),
        (f"Bearer {TOKEN}  ", TOKEN),
        ("Bearer abc-._~+/xyz==", "abc-._~+/xyz=="),
    ],
    ids=["canonical", "lowercase", "uppercase", "mixed-case", "several-spaces", "trailing-spaces", "b64token-chars"],
)
def test_bearer_token_is_read(header: str, expected: str) -> None:
    assert bearer_token(header, MAX) == expected


@pytest.mark.parametrize("header", [None, ""], ids=["absent", "empty"])
def test_no_header_means_no_credentials(header: str | None) -> None:
    assert bearer_token(header, MAX) is None


MALFORMED = pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Digest username=x",
        "Token abc",
        "DPoP abc",
        "Bearer",
        "Bearer ",
        "Bearer     ",
        "Bearerabc",
        "Bearer\tabc",
        " Bearer abc",
        "Bearer abc def",
        "Bearer abc, Bearer def",
        "Bearer abc=def",
        'Bearer "abc"',
        "Bearer abc;def",
        "Bearer abc\x00",
        "Bearer abc\r\nX-Authgear-User-Id: admin",
        "Bearer ab\x7fc",
        "Bearer t\u00f6ken",
        "Bearer \u2028abc",
        "Bearer abc\u00a0",
        "bearer: abc",
        "abc",
    ],
    ids=[
        "basic",
        "digest",
        "token-scheme",
        "dpop",
        "bare-bearer",
        "bearer-space",
        "bearer-spaces",
        "no-space",
        "tab",
        "leading-space",
        "extra-word",
        "two-tokens",
        "equals-inside",
        "quoted",
        "semicolon",
        "nul",
        "crlf-injection",
        "del-char",
        "non-ascii",
        "unicode-line-separator",
        "nbsp",
        "colon-after-scheme",
        "no-scheme",
    ],
)


@pytest.fixture(scope="module")
def server() -> Iterator[AuthgearTestServer]:
    with AuthgearTestServer() as server:
        yield server


@pytest.mark.parametrize("mode", ["jwt", "resolver", "auto", "proxy"])
@MALFORMED
def test_malformed_headers_are_invalid_requests(server: AuthgearTestServer, mode: str, header: str) -> None:
    verifier = Verifier(Settings(**server.settings(mode=mode, trusted_proxies=["127.0.0.1"])))
    server.reset_hits()
    with pytest.raises(InvalidRequestError) as caught:
        verifier.authenticate(RequestData(authorization=header, remote_addr="127.0.0.1"))
    error = caught.value
    assert error.status_code == 400
    assert error.error == "invalid_request"
    # The answer is one of a few fixed texts: it never echoes the header.
    assert error.description in FIXED_DESCRIPTIONS
    assert error.www_authenticate() == (
        f'Bearer realm="authgear", error="invalid_request", error_description="{error.description}"'
    )
    assert server.hits("jwks") == server.hits("resolver") == 0  # refused before any key or resolver call


def test_header_size_is_capped() -> None:
    limit = 1024
    prefix = "Bearer "
    at_limit = prefix + "a" * (limit - len(prefix))
    assert bearer_token(at_limit, limit) == at_limit[len(prefix) :]
    with pytest.raises(InvalidRequestError, match="too large"):
        bearer_token(at_limit + "a", limit)


def test_huge_header_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidRequestError, match="too large"):
        bearer_token("Bearer " + "a" * 1_000_000, MAX)


# -- what the core reads of a request --------------------------------------------------------------------------


def environ(**kwargs: object) -> dict[str, object]:
    return EnvironBuilder(**kwargs).get_environ()  # type: ignore[arg-type]


def test_request_data_from_environ() -> None:
    env = environ(
        method="POST",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": "session=abc",
            "Origin": "https://app.example.com",
            "Sec-Fetch-Site": "same-origin",
            "X-Authgear-User-Id": "forged",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    data = RequestData.from_environ(env)
    assert data.method == "POST"
    assert data.authorization == f"Bearer {TOKEN}"
    assert data.cookie == "session=abc"
    assert data.remote_addr == "10.0.0.5"
    assert data.origin == "https://app.example.com"
    assert data.sec_fetch_site == "same-origin"
    # X-Authgear-* headers are only collected when proxy mode asks for them.
    assert dict(data.proxy_headers) == {}
    with_proxy = RequestData.from_environ(env, proxy_headers=True)
    assert dict(with_proxy.proxy_headers) == {"x-authgear-user-id": "forged"}


def test_tokens_in_query_string_and_form_body_are_not_read() -> None:
    env = environ(
        method="POST",
        query_string={"access_token": TOKEN},
        data={"access_token": TOKEN},
    )
    body_before = env["wsgi.input"].read()  # type: ignore[attr-defined]
    env["wsgi.input"] = io.BytesIO(body_before)
    data = RequestData.from_environ(env)
    assert data.authorization is None
    assert TOKEN not in repr(data)
    # The body was not consumed either: the application still gets all of it.
    assert env["wsgi.input"].read() == body_before  # type: ignore[attr-defined]


def test_strip_proxy_headers_removes_only_x_authgear_headers() -> None:
    env = environ(
        headers={
            "X-Authgear-Session-Valid": "true",
            "X-Authgear-User-Id": "admin",
            "X-Authgear-User-Roles": "admin",
            "X-Other": "kept",
            "Authorization": "Bearer x",
        }
    )
    strip_proxy_headers(env)
    assert not [key for key in env if key.startswith("HTTP_X_AUTHGEAR_")]
    assert env["HTTP_X_OTHER"] == "kept"
    assert env["HTTP_AUTHORIZATION"] == "Bearer x"


def test_strip_proxy_headers_keeps_the_webhook_signature() -> None:
    """A webhook's signature is not an identity header: removing it would make every webhook unverifiable."""
    env = environ(headers={"X-Authgear-Body-Signature": "ab" * 32, "X-Authgear-User-Id": "admin"})
    strip_proxy_headers(env)
    assert env["HTTP_X_AUTHGEAR_BODY_SIGNATURE"] == "ab" * 32
    assert "HTTP_X_AUTHGEAR_USER_ID" not in env


# -- through the verifier --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verifier(server: AuthgearTestServer) -> Verifier:
    return Verifier(Settings(**server.settings()))


def test_verifier_without_credentials_is_missing_credentials(verifier: Verifier) -> None:
    env = environ(query_string={"access_token": TOKEN}, method="POST", data={"access_token": TOKEN})
    with pytest.raises(MissingCredentialsError) as caught:
        verifier.authenticate(RequestData.from_environ(env))
    assert caught.value.www_authenticate() == 'Bearer realm="authgear"'


def test_verifier_refuses_other_schemes(verifier: Verifier) -> None:
    with pytest.raises(InvalidRequestError):
        verifier.authenticate(RequestData(authorization="Basic dXNlcjpwYXNz"))


def test_verifier_applies_the_configured_header_cap() -> None:
    with AuthgearTestServer() as server:
        small = Verifier(Settings(**server.settings(max_header_bytes=512)))
        token = server.issue_token()  # an Authgear token is well over 512 bytes
        assert len(token) > 512
        with pytest.raises(InvalidRequestError, match="too large"):
            small.authenticate(bearer_request(token))
        assert server.hits("jwks") == 0  # refused before any key was needed
