"""The local server's resolver answers as Authgear's does, and what the library's modes make of each answer.

Authgear (``pkg/lib/session/middleware.go``, ``pkg/lib/oauth/resolver.go``): the bearer token, then the
``app_session`` and ``app_access_token`` cookies, then the IdP ``session`` cookie; an invalid one does not end the
lookup. Only an invalid ``session`` cookie answers ``Session-Valid: false`` (and clears that cookie alone), as
does a live session whose user is disabled; otherwise an unknown credential gets no ``X-Authgear-*`` header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from flask_authgear import ForbiddenError, InvalidTokenError, Settings, Verifier
from flask_authgear.core import RequestData
from flask_authgear.testing import AuthgearTestServer, TestSession

API = "https://api.example.com/orders"

pytestmark = pytest.mark.usefixtures("reset_server")


@dataclass
class Answer:
    valid: str | None  # X-Authgear-Session-Valid, None when absent
    user: str | None
    set_cookie: str | None
    authgear_headers: int


def ask(server: AuthgearTestServer, authorization: str | None = None, cookie: str | None = None) -> Answer:
    headers = {"Host": server.host_header}
    if authorization is not None:
        headers["Authorization"] = authorization
    if cookie is not None:
        headers["Cookie"] = cookie
    response = requests.get(f"{server.endpoint}/_resolver/resolve", headers=headers, timeout=5)
    assert response.status_code == 200 and response.content == b""
    return Answer(
        response.headers.get("X-Authgear-Session-Valid"),
        response.headers.get("X-Authgear-User-Id"),
        response.headers.get("Set-Cookie"),
        sum(1 for name in response.headers if name.lower().startswith("x-authgear-")),
    )


Credentials = Callable[[AuthgearTestServer, TestSession], tuple[str | None, str | None]]


def valid_jwt(server: AuthgearTestServer, session: TestSession) -> str:
    return server.issue_token(session.user_id)


#: name -> (Authorization, Cookie) built from the server and a live session of "alice", and the answer:
#: the user id that is valid, "false" for Session-Valid: false, None for no header at all.
CASES: dict[str, tuple[Credentials, str | None]] = {
    "nothing": (lambda s, a: (None, None), None),
    "bearer": (lambda s, a: (a.authorization, None), "alice"),
    "bearer-jwt": (lambda s, a: (f"Bearer {valid_jwt(s, a)}", None), "alice"),
    "bearer-invalid": (lambda s, a: ("Bearer nope", None), None),
    "bearer-invalid+session": (lambda s, a: ("Bearer nope", a.cookie), "alice"),
    "bearer-invalid+app-session": (lambda s, a: ("Bearer nope", f"app_session={a.app_session_token}"), "alice"),
    "bearer-invalid+app-access-token": (lambda s, a: ("Bearer nope", f"app_access_token={a.token}"), "alice"),
    "bearer-invalid+app-access-token-jwt": (
        lambda s, a: ("Bearer nope", f"app_access_token={valid_jwt(s, a)}"),
        "alice",
    ),
    "bearer-invalid+session-invalid": (lambda s, a: ("Bearer nope", "session=nope"), "false"),
    "session-invalid": (lambda s, a: (None, "session=nope"), "false"),
    "app-session-invalid": (lambda s, a: (None, "app_session=nope"), None),
    "app-access-token-invalid": (lambda s, a: (None, "app_access_token=nope"), None),
    "app-session-invalid+session": (lambda s, a: (None, f"app_session=nope; {a.cookie}"), "alice"),
    "app-session+session-invalid": (lambda s, a: (None, f"app_session={a.app_session_token}; session=nope"), "alice"),
    "bearer+session-invalid": (lambda s, a: (a.authorization, "session=nope"), "alice"),
    "session-value-as-bearer": (lambda s, a: (f"Bearer {a.cookie_value}", None), None),
    "bearer-value-as-session": (lambda s, a: (None, f"session={a.token}"), "false"),
    "machine-token": (lambda s, a: (f"Bearer {s.machine_token('svc', resource=API)}", None), None),
    "machine-token+session": (lambda s, a: (f"Bearer {s.machine_token('svc', resource=API)}", a.cookie), "alice"),
    "jwt-for-another-audience": (lambda s, a: (f"Bearer {s.issue_token('alice', aud=[API])}", None), None),
}


@pytest.fixture
def alice(server: AuthgearTestServer) -> TestSession:
    return server.create_session("alice")


@pytest.mark.parametrize("name", list(CASES))
def test_the_local_resolver_follows_authgear(server: AuthgearTestServer, alice: TestSession, name: str) -> None:
    credentials, expected = CASES[name]
    answer = ask(server, *credentials(server, alice))
    if expected is None:
        assert answer.authgear_headers == 0
    elif expected == "false":
        assert (answer.valid, answer.authgear_headers) == ("false", 1)
    else:
        assert (answer.valid, answer.user) == ("true", expected)
    # Each false answer here comes from an invalid session cookie, which is cleared; nothing else ever is.
    if expected == "false":
        assert answer.set_cookie is not None and answer.set_cookie.startswith("session=;")
    else:
        assert answer.set_cookie is None


@pytest.mark.parametrize("how", ["bearer", "bearer-jwt", "session", "app-session", "app-access-token"])
def test_a_live_session_of_a_disabled_user_is_session_valid_false(
    server: AuthgearTestServer, alice: TestSession, how: str
) -> None:
    token = valid_jwt(server, alice)
    server.disable_user("alice", end_sessions=False)  # a temporary disabling that began after the sign-in
    authorization, cookie = {
        "bearer": (alice.authorization, None),
        "bearer-jwt": (f"Bearer {token}", None),
        "session": (None, alice.cookie),
        "app-session": (None, f"app_session={alice.app_session_token}"),
        "app-access-token": (None, f"app_access_token={alice.token}"),
    }[how]
    answer = ask(server, authorization, cookie)
    assert (answer.valid, answer.authgear_headers) == ("false", 1)
    # Only the IdP session cookie is cleared, and only when the request carried it.
    assert (answer.set_cookie is not None) == (how == "session")


def test_disabling_ends_sessions_so_their_credentials_are_unknown(
    server: AuthgearTestServer, alice: TestSession
) -> None:
    token = valid_jwt(server, alice)
    server.disable_user("alice")
    assert ask(server, alice.authorization).authgear_headers == 0
    assert ask(server, f"Bearer {token}").authgear_headers == 0
    answer = ask(server, None, alice.cookie)
    assert answer.valid == "false" and answer.set_cookie is not None


# -- what the library makes of it ------------------------------------------------------------------------------


@pytest.fixture(params=["resolver", "auto"])
def verifier(request: pytest.FixtureRequest, server: AuthgearTestServer) -> Iterator[Verifier]:
    made = Verifier(Settings(**server.settings(mode=request.param, resolver_negative_ttl=0)))
    yield made
    made.close()


def authenticate(verifier: Verifier, authorization: str | None = None, cookie: str | None = None) -> str:
    """The user id, or the kind of refusal."""
    try:
        return verifier.authenticate(RequestData(authorization=authorization, cookie=cookie)).id
    except InvalidTokenError as exc:
        return f"401 {exc.description}"


SESSION_ENDED = "401 The session is invalid or has expired."
INVALID = "401 The access token is invalid."


def test_a_bad_bearer_token_never_falls_back_to_the_cookies(
    server: AuthgearTestServer, alice: TestSession, verifier: Verifier
) -> None:
    # Authgear answers these as alice; the library judges the bearer token alone.
    assert authenticate(verifier, "Bearer nope", alice.cookie) == INVALID
    assert authenticate(verifier, "Bearer nope", f"app_session={alice.app_session_token}") == INVALID
    expired = server.issue_token("alice", expires_in=-3600)
    assert authenticate(verifier, f"Bearer {expired}", alice.cookie).startswith("401 ")
    # And a good bearer token is not spoilt by a bad cookie.
    assert authenticate(verifier, alice.authorization, "session=nope") == "alice"


def test_cookies_alone_are_resolved_as_authgear_does(
    server: AuthgearTestServer, alice: TestSession, verifier: Verifier
) -> None:
    assert authenticate(verifier, None, alice.cookie) == "alice"
    assert authenticate(verifier, None, f"app_session={alice.app_session_token}") == "alice"
    assert authenticate(verifier, None, f"app_access_token={alice.token}") == "alice"
    assert authenticate(verifier, None, f"app_session=nope; {alice.cookie}") == "alice"
    assert authenticate(verifier, None, "session=nope") == SESSION_ENDED
    assert authenticate(verifier, None, "app_session=nope") == SESSION_ENDED


def test_a_live_session_of_a_disabled_user_is_refused(
    server: AuthgearTestServer, alice: TestSession, verifier: Verifier
) -> None:
    server.disable_user("alice", end_sessions=False)
    assert authenticate(verifier, alice.authorization) == INVALID
    assert authenticate(verifier, None, alice.cookie) == SESSION_ENDED


def test_a_machine_token_is_unknown_to_the_resolver_and_verified_locally_in_auto_mode(
    server: AuthgearTestServer, verifier: Verifier
) -> None:
    token = server.machine_token("svc", resource=API, scopes=["read"])
    if verifier.settings.mode == "resolver":
        assert authenticate(verifier, f"Bearer {token}") == INVALID
    else:
        # Auto mode verifies a JWT locally, where the audience decides (the endpoint only, here).
        refusal = authenticate(verifier, f"Bearer {token}")
        assert refusal.startswith("401 The access token is not meant for this application")
        with_api = Verifier(Settings(**server.settings(mode="auto", audience=[server.endpoint, API])))
        assert with_api.authenticate(RequestData(authorization=f"Bearer {token}")).is_machine
        with_api.close()


def test_in_proxy_mode_a_cookie_beside_a_bearer_token_is_held_to_the_cross_site_rule(
    server: AuthgearTestServer, alice: TestSession
) -> None:
    # A proxy's resolver call falls back to the cookie when the bearer token is invalid: the cookie may be what
    # vouches for the request, so a cross-site state-changing request is refused before the headers are read.
    verifier = Verifier(Settings(**server.settings(mode="proxy", trusted_proxies=["127.0.0.1"])))
    request = RequestData(
        method="POST",
        authorization="Bearer nope",
        cookie=alice.cookie,
        remote_addr="127.0.0.1",
        sec_fetch_site="cross-site",
        host="app.example.com",
        proxy_headers={"x-authgear-session-valid": "true", "x-authgear-user-id": "alice"},
    )
    with pytest.raises(ForbiddenError):
        verifier.authenticate(request)
    assert verifier.authenticate(request._replace(sec_fetch_site="same-origin")).id == "alice"
