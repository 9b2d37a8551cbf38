"""Errors know their HTTP answer: status, RFC 6750 challenge and JSON body, never echoing input."""

from __future__ import annotations

import json
import re

import pytest

from flask_authgear import (
    AuthgearError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTokenError,
    MissingCredentialsError,
    ProviderUnavailableError,
    ReauthenticationRequiredError,
)
from flask_authgear.core.refusals import Reason, TokenError
from tests.support.examples import ROOT

# RFC 6750 section 3: the characters allowed inside error_description and other quoted values.
HEADER_SAFE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")

EXPECTED = [
    (MissingCredentialsError, 401, 'Bearer realm="api"', "unauthorized"),
    (
        InvalidRequestError,
        400,
        'Bearer realm="api", error="invalid_request", error_description="The Authorization header is malformed."',
        "invalid_request",
    ),
    (
        InvalidTokenError,
        401,
        'Bearer realm="api", error="invalid_token", error_description="The access token is invalid."',
        "invalid_token",
    ),
    (
        ReauthenticationRequiredError,
        401,
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required."',
        "insufficient_user_authentication",
    ),
    (
        ForbiddenError,
        403,
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The user is not allowed to access this resource."',
        "insufficient_scope",
    ),
    (ProviderUnavailableError, 503, 'Bearer realm="api"', "temporarily_unavailable"),
]


@pytest.mark.parametrize(("cls", "status", "challenge", "code"), EXPECTED, ids=[cls.__name__ for cls, *_ in EXPECTED])
def test_each_error_knows_its_answer(cls: type[AuthgearError], status: int, challenge: str, code: str) -> None:
    error = cls()
    assert isinstance(error, AuthgearError)
    assert error.status_code == status
    assert error.www_authenticate("api") == challenge
    headers = dict(error.headers("api"))
    assert headers["WWW-Authenticate"] == challenge
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    body = json.loads(error.body())
    assert body == error.to_dict()
    assert body["error"] == code
    assert body["error_description"] == cls.description
    assert HEADER_SAFE.fullmatch(cls.description)


def test_missing_credentials_challenge_has_no_error_attribute() -> None:
    # RFC 6750 3.1: a request without credentials gets a challenge without an error code.
    challenge = MissingCredentialsError().www_authenticate()
    assert challenge == 'Bearer realm="authgear"'
    assert "error" not in challenge


def test_only_unavailable_asks_to_retry() -> None:
    assert dict(ProviderUnavailableError().headers())["Retry-After"].isdigit()
    for cls in (MissingCredentialsError, InvalidTokenError, ForbiddenError, InvalidRequestError):
        assert "Retry-After" not in dict(cls().headers())


def test_default_realm() -> None:
    assert InvalidTokenError().www_authenticate().startswith('Bearer realm="authgear", ')


def test_custom_header_safe_description_is_used() -> None:
    error = InvalidTokenError("The access token has expired.")
    assert 'error_description="The access token has expired."' in error.www_authenticate()
    assert error.to_dict()["error_description"] == "The access token has expired."
    assert str(error) == "The access token has expired."


@pytest.mark.parametrize(
    "description",
    ['bad "quote"', "back\\slash", "line\r\nSet-Cookie: x=1", "tab\there", "caf\u00e9", "nul\x00"],
    ids=["quote", "backslash", "crlf", "tab", "non-ascii", "nul"],
)
def test_unsafe_descriptions_never_reach_the_header(description: str) -> None:
    error = InvalidTokenError(description)
    assert error.description == InvalidTokenError.description
    challenge = error.www_authenticate()
    assert description not in challenge
    assert description not in error.body().decode()


def test_realm_is_header_safe() -> None:
    challenge = InvalidTokenError().www_authenticate('evil", error="none\r\n')
    assert challenge.startswith('Bearer realm="authgear", error="invalid_token"')
    assert "\r" not in challenge


def test_extra_challenge_parameters() -> None:
    error = ReauthenticationRequiredError(max_age="300")
    assert error.www_authenticate("api").endswith(', max_age="300"')
    assert error.to_dict()["max_age"] == "300"


@pytest.mark.parametrize(
    "params",
    [{"max_age": '1", error="x'}, {"max_age": "1\r\nX: y"}, {"error": "other"}, {"realm": "other"}, {"Bad-Name": "1"}],
    ids=["quote-in-value", "crlf-in-value", "error-override", "realm-override", "bad-name"],
)
def test_unsafe_challenge_parameters_are_dropped(params: dict[str, str]) -> None:
    error = ReauthenticationRequiredError(**params)
    assert error.auth_params == {}
    assert error.www_authenticate() == (
        'Bearer realm="authgear", error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required."'
    )


def test_repr_names_class_and_status_only() -> None:
    assert repr(InvalidTokenError()) == "InvalidTokenError(status=401, error='invalid_token')"


def test_body_is_what_the_documentation_shows() -> None:
    # The page on the core shows body() for an expired token: the bytes an adapter sends, the to_dict() as JSON.
    page = (ROOT / "docs" / "wsgi.rst").read_text(encoding="utf-8")
    shown = re.search(r"^   (b'\{.*\}')$", page, re.MULTILINE)
    assert shown is not None
    body = TokenError(Reason.EXPIRED).body()
    assert isinstance(body, bytes) and repr(body) == shown.group(1)
    assert json.loads(body) == TokenError(Reason.EXPIRED).to_dict()
