"""What only the NGINX example does; the behaviour both proxies share runs in tests/stacks/test_proxy_end_to_end.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_authgear.testing.server import AuthgearTestServer
from tests.support.app_server import AppServer
from tests.support.examples import load_example
from tests.support.nginx_server import start_nginx
from tests.support.proxy_server import resolver_request

flask_api = load_example("flask_api")


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    with AuthgearTestServer() as authgear:
        config = authgear.flask_config(mode="proxy", trusted_proxies="127.0.0.1")
        with AppServer(flask_api.create_app(config)) as app:
            yield app


def test_the_resolver_gets_only_the_credentials_and_the_authgear_host(app: AppServer) -> None:
    _, received = resolver_request(start_nginx, app.port)
    assert received.method == "GET"
    assert received.body == b""
    assert received.headers["host"] == "myapp.authgear.example"
    assert received.headers["authorization"] == "Bearer opaque"
    assert received.headers["cookie"] == "session=abc"
    assert set(received.headers) <= {"host", "authorization", "cookie", "connection"}
