"""A call to Authgear that fails names its URL and what failed (DNS, refused, TLS, timeout), in the discovery,
JWKS and resolver records alike: real servers on 127.0.0.1, except the DNS case, which no loopback test can
produce and which is checked on the error chain the HTTP stack builds."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flask_authgear import ProviderUnavailableError, Settings, Verifier
from flask_authgear.core.http import describe_error, fetch_json, new_session
from flask_authgear.core.request import RequestData
from flask_authgear.testing import AuthgearTestServer
from tests.support.attacks import self_signed_cert
from tests.support.net import free_port

pytestmark = pytest.mark.usefixtures("reset_server")

#: The three calls to Authgear, each failing at ``url``: the warning each one logs.
Call = Callable[[str, float], None]


def discovery(url: str, timeout: float) -> None:
    """The JWKS cache's first call: discovery at the endpoint ``url``."""
    Verifier(Settings(endpoint=url, http_timeout=timeout)).warm_up()


def jwks(url: str, timeout: float) -> None:
    """A configured JWKS location: no discovery, the JWKS itself at ``url``."""
    Verifier(Settings(endpoint="https://myapp.authgear.cloud", jwks_uri=url, http_timeout=timeout)).warm_up()


def resolver(url: str, timeout: float) -> None:
    settings = Settings(
        endpoint="https://myapp.authgear.cloud", mode="resolver", resolver_url=url, http_timeout=timeout
    )
    verifier = Verifier(settings)
    with pytest.raises(ProviderUnavailableError):
        verifier.authenticate(RequestData(cookie="session=abc"))
    verifier.close()


CALLS: dict[str, tuple[Call, str]] = {
    "discovery": (discovery, "/.well-known/openid-configuration"),
    "jwks": (jwks, ""),
    "resolver": (resolver, ""),
}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="flask_authgear")
    return caplog


def warning(call: str, base: str, logs: pytest.LogCaptureFixture, timeout: float = 2.0) -> str:
    """Make ``call`` fail against ``base``; return what failed, from the one warning it logged, which names the
    URL."""
    function, path = CALLS[call]
    function(base, timeout)
    records = [r.getMessage() for r in logs.records if r.name == "flask_authgear" and r.levelno == logging.WARNING]
    assert len(records) == 1, records
    assert f"GET {base}{path} failed: " in records[0]
    return records[0].split(" failed: ", 1)[1]


@pytest.mark.parametrize("call", list(CALLS))
def test_a_refused_connection(call: str, logs: pytest.LogCaptureFixture) -> None:
    assert warning(call, f"http://127.0.0.1:{free_port()}", logs) == "connection refused"


@pytest.mark.parametrize("call", list(CALLS))
def test_a_timeout(call: str, logs: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # connections wait in its backlog, never answered
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert warning(call, base, logs, timeout=0.3) == "timed out"


@pytest.mark.parametrize("call", list(CALLS))
def test_tls_to_a_server_that_does_not_speak_it(call: str, server: AuthgearTestServer, logs) -> None:
    base = server.endpoint.replace("http://", "https://")
    assert warning(call, base, logs).startswith("TLS handshake failed (")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An https server on 127.0.0.1 whose certificate nobody signed: the base URL."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed_files(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _self_signed_files(folder: Path) -> tuple[Path, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_cert(private, "127.0.0.1", ip="127.0.0.1")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("call", list(CALLS))
def test_an_untrusted_certificate(call: str, self_signed: str, logs: pytest.LogCaptureFixture) -> None:
    assert warning(call, self_signed, logs) == "TLS certificate not trusted (self-signed certificate)"


def test_a_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # The host name lookup is the one step a loopback test cannot fail for real: the system resolver answers it.
    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    session = new_session(1.0)
    with pytest.raises(Exception) as caught:
        fetch_json(session, "https://auth.example.com/.well-known/openid-configuration")
    assert str(caught.value) == (
        "GET https://auth.example.com/.well-known/openid-configuration failed: DNS lookup failed (unknown host)"
    )


def test_an_error_of_another_kind_is_named_by_its_class() -> None:
    assert describe_error(ValueError("a body that is not an answer")) == "ValueError"
