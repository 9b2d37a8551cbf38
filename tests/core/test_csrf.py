"""Cookie sessions refuse cross-site state-changing requests; bearer tokens and safe methods are not affected."""

from __future__ import annotations

from typing import Any

import pytest

from flask_authgear import ForbiddenError, Settings, Verifier
from flask_authgear.core import RequestData
from flask_authgear.core.csrf import check_cross_site
from flask_authgear.testing.server import AuthgearTestServer, TestSession

HOST = "app.example.com"


def check(request: RequestData, **overrides: Any) -> None:
    check_cross_site(Settings(endpoint="https://myapp.authgear.cloud", mode="resolver", **overrides), request)


def cookie_request(method: str = "POST", **kw: Any) -> RequestData:
    kw.setdefault("host", HOST)
    return RequestData(method=method, cookie="session=abc", **kw)


CROSS_SITE = {
    "foreign-origin": {"origin": "https://evil.example"},
    "sibling-subdomain": {"origin": "https://evil.example.com"},
    "other-port": {"origin": "https://app.example.com:8443"},
    "null-origin": {"origin": "null"},
    "garbage-origin": {"origin": "::::"},
    "origin-with-path": {"origin": "https://app.example.com/path"},
    "fetch-cross-site": {"sec_fetch_site": "cross-site"},
    "fetch-same-site": {"sec_fetch_site": "same-site"},
    "fetch-cross-site-own-origin": {"sec_fetch_site": "cross-site", "origin": "https://app.example.com"},
    "no-own-host": {"origin": "https://app.example.com", "host": None},
}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post", "PROPFIND"])
@pytest.mark.parametrize("headers", list(CROSS_SITE.values()), ids=list(CROSS_SITE))
def test_cross_site_state_changing_cookie_requests_are_403(method: str, headers: dict[str, Any]) -> None:
    with pytest.raises(ForbiddenError) as caught:
        check(cookie_request(method, **headers))
    assert caught.value.status_code == 403
    assert caught.value.description == "Cross-site requests authenticated by a session cookie are not allowed."
    assert "evil" not in caught.value.www_authenticate() and "evil" not in caught.value.body().decode()


SAME_ORIGIN = {
    "same-origin": {"origin": "https://app.example.com"},
    "same-origin-default-port": {"origin": "https://app.example.com", "host": "app.example.com:443"},
    "same-origin-http-port": {"origin": "http://app.example.com:8080", "host": "app.example.com:8080"},
    "origin-case": {"origin": "HTTPS://APP.EXAMPLE.COM"},
    "fetch-same-origin": {"sec_fetch_site": "same-origin"},
    "fetch-none": {"sec_fetch_site": "none"},
    "no-browser-headers": {},
}


@pytest.mark.parametrize("headers", list(SAME_ORIGIN.values()), ids=list(SAME_ORIGIN))
def test_same_origin_cookie_requests_pass(headers: dict[str, Any]) -> None:
    check(cookie_request(**headers))


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_pass(method: str) -> None:
    check(cookie_request(method, origin="https://evil.example", sec_fetch_site="cross-site"))


def test_trusted_origins_pass_and_others_do_not() -> None:
    trusted = {"trusted_origins": ["https://admin.example.com/", "https://partner.example"]}
    check(cookie_request(origin="https://admin.example.com", sec_fetch_site="same-site"), **trusted)
    check(cookie_request(origin="https://PARTNER.example", sec_fetch_site="cross-site"), **trusted)
    with pytest.raises(ForbiddenError):
        check(cookie_request(origin="https://partner.example.evil", sec_fetch_site="cross-site"), **trusted)


def test_protection_can_be_turned_off() -> None:
    check(cookie_request(origin="https://evil.example", sec_fetch_site="cross-site"), csrf_protection=False)


# -- wired into the verifier ------------------------------------------------------------------------------


@pytest.fixture
def session(server: AuthgearTestServer) -> TestSession:
    server.reset_hits()
    return server.create_session("csrf-user")


@pytest.mark.parametrize("mode", ["resolver", "auto"])
def test_a_forged_cookie_post_is_refused_before_asking_the_resolver(
    server: AuthgearTestServer, session: TestSession, mode: str
) -> None:
    verifier = Verifier(Settings(**server.settings(mode=mode)))
    try:
        forged = RequestData(method="POST", cookie=session.cookie, origin="https://evil.example", host=HOST)
        with pytest.raises(ForbiddenError):
            verifier.authenticate(forged)
        assert server.hits("resolver") == 0
        same = RequestData(method="POST", cookie=session.cookie, origin=f"https://{HOST}", host=HOST)
        assert verifier.authenticate(same).id == "csrf-user"
    finally:
        verifier.close()


def test_bearer_requests_are_not_subject_to_the_rule(server: AuthgearTestServer, session: TestSession) -> None:
    verifier = Verifier(Settings(**server.settings(mode="resolver")))
    try:
        request = RequestData(
            method="DELETE",
            authorization=session.authorization,
            cookie=session.cookie,
            origin="https://evil.example",
            sec_fetch_site="cross-site",
            host=HOST,
        )
        assert verifier.authenticate(request).id == "csrf-user"
    finally:
        verifier.close()


def test_request_data_from_environ_carries_host() -> None:
    data = RequestData.from_environ(
        {"REQUEST_METHOD": "POST", "HTTP_HOST": HOST, "wsgi.url_scheme": "https", "HTTP_ORIGIN": "https://x"}
    )
    assert (data.host, data.origin) == (HOST, "https://x")
