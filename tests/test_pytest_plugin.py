"""The pytest plugin: a fresh test file, in a fresh pytest process, gets the fixtures by installing the package."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import requests


def test_server_fixture_runs_a_server(authgear_server):
    document = requests.get(authgear_server.endpoint + "/.well-known/openid-configuration", timeout=5).json()
    assert document["issuer"] == authgear_server.endpoint


def test_token_factory_uses_the_same_server(authgear_server, authgear_token):
    token = authgear_token("alice", roles=["admin"])
    kid = authgear_server.signing_key.kid
    import base64, json
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == kid


def test_each_test_gets_a_fresh_server_first(authgear_server, request):
    request.config.cache_kid = authgear_server.signing_key.kid


def test_each_test_gets_a_fresh_server_second(authgear_server, request):
    assert authgear_server.signing_key.kid != request.config.cache_kid


def test_shared_server_keeps_its_endpoint_first(authgear_shared_server, request):
    request.config.shared_endpoint = authgear_shared_server.endpoint


def test_shared_server_keeps_its_endpoint_second(authgear_shared_server, request):
    assert authgear_shared_server.endpoint == request.config.shared_endpoint
"""

TOKEN_TESTS = """
import base64, json

import pytest


def kid(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]


def test_token_from_the_shared_server(authgear_shared_server, authgear_token):
    assert kid(authgear_token("alice")) == authgear_shared_server.signing_key.kid


@pytest.fixture
def app_endpoint(authgear_shared_server):
    return authgear_shared_server.endpoint


def test_token_from_the_server_a_fixture_uses(app_endpoint, authgear_token, request):
    server = request.getfixturevalue("authgear_shared_server")
    assert kid(authgear_token("alice")) == server.signing_key.kid


def test_token_without_a_server_fixture(authgear_token):
    pass


def test_token_with_both_server_fixtures(authgear_server, authgear_shared_server, authgear_token):
    pass
"""


def test_fixtures_reach_a_fresh_test_file_through_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)


def test_token_factory_mints_from_the_server_the_test_uses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tokens=TOKEN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the test requests neither of authgear_server and authgear_shared_server: request exactly one*",
            "*the test requests both of authgear_server and authgear_shared_server: request exactly one*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--fixtures", "-q")
    result.stdout.fnmatch_lines(
        [
            "*authgear_server*",
            "*A running local Authgear-compatible server on 127.0.0.1*",
            "*authgear_shared_server*",
            "*authgear_token*",
        ]
    )


def test_without_the_plugin_the_fixture_is_unknown(pytester: pytest.Pytester) -> None:
    """Guards the test above: the fixture really comes from the plugin, not from this repository's conftest."""
    pytester.makepyfile(test_user="def test_it(authgear_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:flask_authgear", "-q")
    result.stdout.fnmatch_lines(["*fixture 'authgear_server' not found*"])


PLUGIN_PROBE = """
import sys


def test_no_fixture_no_server():
    assert "flask_authgear.pytest_plugin" in sys.modules
    assert "flask_authgear.testing.server" not in sys.modules
    assert "cryptography" not in sys.modules


def test_a_fixture_brings_the_server(authgear_server):
    assert "flask_authgear.testing.server" in sys.modules
"""


def test_the_plugin_imports_the_server_only_for_a_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PLUGIN_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
