"""``flask-authgear verify`` and ``resolve`` end to end against the local server: each verdict explained."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from flask_authgear.cli import cli, main
from flask_authgear.testing import AuthgearTestServer, new_signing_key
from tests.support.jwt import b64url
from tests.support.net import free_port

ROLES = "https://authgear.com/claims/user/roles"


@pytest.fixture(autouse=True)
def _healthy(server: AuthgearTestServer) -> Iterator[None]:
    yield
    server.heal()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verify(capsys: pytest.CaptureFixture[str], server: AuthgearTestServer, token: str, *extra: str) -> tuple[int, str]:
    code, out, err = run(capsys, "verify", token, "--endpoint", server.endpoint, *extra)
    assert "Traceback" not in out + err
    return code, out


def result(out: str) -> str:
    """The verdict line, ``Result: ...``."""
    return next(line for line in out.splitlines() if line.startswith("Result: "))


def fix(out: str) -> str | None:
    """The line that says how to fix a refusal, if any: it follows the verdict and ends the report."""
    last = out.rstrip().splitlines()[-1]
    return last if last.startswith("Fix: ") else None


def check_line(out: str, name: str) -> str:
    """The line of the Checks section for ``name``."""
    for line in out.split("Checks\n", 1)[1].splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == name:
            return line
    raise AssertionError(f"no {name} check in:\n{out}")


# -- verify: a valid token -----------------------------------------------------------------------------------


def test_valid_token_exits_zero_and_shows_header_claims_and_every_check(capsys, server):
    token = server.issue_token("alice", roles=["admin", "editor"])
    code, out = verify(capsys, server, token)
    assert code == 0
    assert out.startswith("Header\n")
    assert '"at+jwt"' in out and f'"{server.signing_key.kid}"' in out
    assert "sub  " in out or '"alice"' in out
    for name in ("format", "alg", "header", "typ", "kid", "signature", "iss", "aud", "sub", "exp", "iat", "roles"):
        assert check_line(out, name).lstrip().startswith("ok"), name
    assert "in 29 minutes (60s clock skew allowed)" in check_line(out, "exp")
    assert "roles: admin, editor" in check_line(out, "roles")
    assert out.rstrip().endswith("Result: VALID, user alice")


def test_long_claim_names_keep_the_values_aligned(capsys, server):
    long_name = "https://example.com/claims/" + "x" * 60  # longer than any name worth aligning on
    code, out = verify(capsys, server, server.issue_token("alice", roles=["admin"], **{long_name: 1}))
    assert code == 0
    claims = out.split("Claims\n", 1)[1].split("Checks\n", 1)[0].splitlines()
    # Authgear's claim URLs (up to https://authgear.com/claims/user/can_reauthenticate) set the column.
    widest = max(len(line.split()[0]) for line in claims if len(line.split()) >= 2)
    assert widest == len("https://authgear.com/claims/user/can_reauthenticate")
    for line in claims:
        if len(line.split()) >= 2:
            name = line.split()[0]
            assert line.startswith(f"  {name:<{widest}}  ") and line[widest + 4] != " ", line
    named = claims.index(f"  {long_name}")  # a longer name stands on its own line, its value below in the column
    assert claims[named + 1] == "  " + " " * widest + "  1"


def test_bearer_prefix_and_standard_input_are_accepted(capsys, server, monkeypatch):
    token = server.issue_token("alice")
    assert verify(capsys, server, f"Bearer {token}")[0] == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(token + "\n"))
    assert verify(capsys, server, "-")[0] == 0


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "flask_authgear", "verify", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "--endpoint" in result.stdout


#: Markup of docstrings that click would print as it is: reST literals and roles, emphasis.
REST_MARKUP = re.compile(r"`|:(?:class|meth|func|attr|data|mod|ref|doc):|\*\*")


@pytest.mark.parametrize("command", ["", *sorted(cli.commands)])
def test_help_shows_plain_text_without_rest_markup(command):
    result = CliRunner().invoke(cli, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    assert not REST_MARKUP.search(result.output), result.output


# -- verify: each failure explained --------------------------------------------------------------------------


def test_expired_token_says_how_long_ago(capsys, server):
    code, out = verify(capsys, server, server.issue_token(expires_in=-185))
    assert code == 1
    line = check_line(out, "exp")
    assert line.lstrip().startswith("FAIL")
    assert "3 minutes ago (60s clock skew allowed): the token has expired" in line
    assert result(out) == "Result: INVALID, the token has expired"
    assert fix(out) == "Fix: get a fresh access token (refresh it)"


def test_expired_inside_the_leeway_is_valid_and_says_so(capsys, server):
    code, out = verify(capsys, server, server.issue_token(expires_in=-10))
    assert code == 0
    line = check_line(out, "exp")
    assert line.lstrip().startswith("ok") and "ago (60s clock skew allowed)" in line


def test_wrong_audience(capsys, server):
    code, out = verify(capsys, server, server.issue_token(), "--audience", "https://api.example.com")
    assert code == 1
    line = check_line(out, "aud")
    assert line.lstrip().startswith("FAIL") and "https://api.example.com" in line
    assert "audience is not an accepted one" in out
    assert fix(out) == "Fix: accept an audience the token carries (AUTHGEAR_AUDIENCE in the app, --audience here)"


def test_audience_option_accepts_a_resource_audience(capsys, server):
    token = server.issue_token(aud=["https://api.example.com"])
    assert verify(capsys, server, token, "--audience", "https://api.example.com")[0] == 0


def test_wrong_issuer_suggests_the_custom_domain_setting(capsys, server):
    code, out = verify(capsys, server, server.issue_token(iss="https://auth.example.com"))
    assert code == 1
    line = check_line(out, "iss")
    assert line.lstrip().startswith("FAIL") and '"https://auth.example.com" (expected: http' in line
    assert fix(out) == (
        "Fix: expect the issuer the project's tokens carry, such as its custom domain "
        "(AUTHGEAR_ISSUER in the app, --issuer here)"
    )
    custom = server.issue_token(iss="https://auth.example.com")
    # The local server's discovery names its own issuer, so the JWKS location must be given with --issuer.
    code, _, err = run(capsys, "verify", custom, "--endpoint", server.endpoint, "--issuer", "https://auth.example.com")
    assert code == 2
    assert err.strip() == (
        f"flask-authgear: cannot fetch the signing keys of {server.endpoint}: the discovery document of "
        f"{server.endpoint} names the issuer '{server.endpoint}', not the configured 'https://auth.example.com': "
        "when the project's tokens carry that issuer (a custom domain, or the endpoint by another name), set "
        "AUTHGEAR_ISSUER and AUTHGEAR_AUDIENCE to it"
    )
    jwks_uri = f"{server.endpoint}/oauth2/jwks"
    assert verify(capsys, server, custom, "--issuer", "https://auth.example.com", "--jwks-uri", jwks_uri)[0] == 0


def test_id_token_typ_is_explained(capsys, server):
    code, out = verify(capsys, server, server.issue_token(header={"typ": "JWT"}))
    assert code == 1
    assert '"JWT" (expected: at+jwt): ' in check_line(out, "typ")
    assert "not an access token" in result(out)
    assert fix(out) == "Fix: send the access token, not the ID token"


def test_unknown_kid_lists_the_known_ones(capsys, server):
    code, out = verify(capsys, server, server.issue_token(key=new_signing_key()))
    assert code == 1
    line = check_line(out, "kid")
    assert line.lstrip().startswith("FAIL")
    assert server.signing_key.kid in line
    assert "not in the project's JWKS" in out
    assert fix(out) == "Fix: point at the project that issued the token (AUTHGEAR_ENDPOINT in the app, --endpoint here)"


def test_altered_payload_fails_the_signature(capsys, server):
    header, _payload, signature = server.issue_token("alice").split(".")
    forged = b64url(json.dumps(server.claims_for("alice", roles=["admin"])).encode())
    code, out = verify(capsys, server, f"{header}.{forged}.{signature}")
    assert code == 1
    assert check_line(out, "signature").lstrip().startswith("FAIL")
    assert check_line(out, "roles").lstrip().startswith("ok")  # the claims are fine, the signature is not
    assert result(out) == "Result: INVALID, the signature does not match"


def test_symmetric_algorithm_is_refused(capsys, server):
    header = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": server.signing_key.kid}).encode())
    payload = b64url(json.dumps(server.claims_for()).encode())
    code, out = verify(capsys, server, f"{header}.{payload}.{b64url(b'x' * 32)}")
    assert code == 1
    assert '"HS256" (allowed: RS256): the signing algorithm is not allowed' in check_line(out, "alg")


def test_header_pointing_at_other_keys_is_refused(capsys, server):
    code, out = verify(capsys, server, server.issue_token(header={"jku": "https://evil.example/jwks"}))
    assert code == 1
    assert "jku: the header carries a member that could point at other keys" in check_line(out, "header")


@pytest.mark.parametrize(
    ("claim", "offset", "words"),
    [("nbf", 3600, "in 59 minutes"), ("iat", 7200, "in 1 hour")],
    ids=["nbf-future", "iat-future"],
)
def test_time_claims_in_the_future(capsys, server, claim, offset, words):
    token = server.issue_token(**{claim: int(time.time()) + offset})
    code, out = verify(capsys, server, token)
    assert code == 1
    line = check_line(out, claim)
    assert line.lstrip().startswith("FAIL") and words in line and "clock" in line


def test_missing_sub_and_bad_roles_claim(capsys, server):
    code, out = verify(capsys, server, server.issue_token("", **{ROLES: "admin"}))
    assert code == 1
    assert check_line(out, "sub").lstrip().startswith("FAIL")
    code, out = verify(capsys, server, server.issue_token("bob", **{ROLES: "admin"}))
    assert code == 1
    assert "wrong type" in check_line(out, "roles")
    assert "user claim has the wrong type" in result(out)


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("opaque-session-token", "this has 1 (an opaque token"),
        ("a.b", "this has 2"),
        ("eyJhbGciOiJSUzI1NiJ9.!!!.sig", "the payload is not a canonical"),
        ("bm90IGpzb24.e30.c2ln", "the header is not a canonical"),
    ],
    ids=["opaque", "two-parts", "bad-payload", "header-not-json"],
)
def test_malformed_tokens_say_what_is_wrong_without_any_network_call(capsys, server, token, words):
    server.reset_hits()
    code, out = verify(capsys, server, token)
    assert code == 1
    assert words in check_line(out, "format")
    assert "Result: INVALID, the token is not a well-formed compact JWT" in out
    assert server.hits("jwks") == 0


def test_control_characters_from_a_token_never_reach_the_terminal(capsys, server):
    token = server.issue_token("evil\x1b]0;owned\x07\x1b[2J")
    code, out = verify(capsys, server, token)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;owned\\x07" in out


# -- verify: errors ------------------------------------------------------------------------------------------


def test_unreachable_endpoint_exits_two_with_one_readable_line(capsys, server):
    token = server.issue_token()
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "verify", token, "--endpoint", endpoint, "--issuer", server.endpoint)
    assert code == 2
    assert "Result: UNKNOWN, the project's signing keys could not be fetched" in out
    assert err.strip() == (
        f"flask-authgear: cannot fetch the signing keys of {endpoint}: "
        f"GET {endpoint}/.well-known/openid-configuration failed: connection refused"
    )
    assert "Traceback" not in out + err


def test_jwks_failing_with_500_exits_two(capsys, server):
    server.fail("jwks", "500")
    code, _out, err = run(capsys, "verify", server.issue_token(), "--endpoint", server.endpoint)
    assert code == 2
    assert "answered HTTP 500" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["verify", "tok"], "--endpoint is required"),
        (["verify", "tok", "--endpoint", "ftp://example.com"], "bad setting: endpoint must be an absolute"),
        (["verify", "tok", "--endpoint", "http://auth.example.com"], "plain http on a non-loopback host"),
        (["verify", "  ", "--endpoint", "https://example.com"], "the token is empty"),
        (["verify", "tok", "--endpoint", "https://example.com", "--algorithm", "HS256"], "'HS256' is not allowed"),
        (["resolve", "--token", "t"], "--endpoint is required"),
    ],
    ids=["no-endpoint", "bad-scheme", "insecure-http", "empty-token", "symmetric-alg", "resolve-no-endpoint"],
)
def test_bad_input_is_one_line_and_exit_two(capsys, monkeypatch, argv, words):
    monkeypatch.delenv("AUTHGEAR_ENDPOINT", raising=False)
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("flask-authgear: error: ") and words in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_two(capsys):
    assert main(["resolve", "--endpoint", "https://example.com"]) == 2  # neither --token nor --cookie
    assert "give exactly one of --token and --cookie" in capsys.readouterr().err
    assert main(["verify", "--no-such-option"]) == 2
    assert main([]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_endpoint_defaults_to_the_environment(capsys, server, monkeypatch):
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", server.endpoint)
    code, _out, _ = run(capsys, "verify", server.issue_token())
    assert code == 0


# -- verify --json -------------------------------------------------------------------------------------------


def assert_admin_user(user, user_id, source):
    """The ``user`` object that ``verify --json`` and ``resolve --json`` print, for a verified admin."""
    assert user.pop("authenticated_at").endswith("+00:00")
    machine = {"is_machine": user.pop("is_machine"), "client_id": user.pop("client_id"), "scopes": user.pop("scopes")}
    if source == "jwt":
        assert machine == {"is_machine": False, "client_id": "test-client", "scopes": ["offline_access", "openid"]}
    else:
        assert machine == {"is_machine": False, "client_id": None, "scopes": []}
    assert user == {
        "id": user_id,
        "roles": ["admin"],
        "is_verified": True,
        "is_anonymous": False,
        "can_reauthenticate": True,
        "amr": ["pwd"],
        "source": source,
    }


def test_json_output_for_a_valid_token(capsys, server):
    code, out = verify(capsys, server, server.issue_token("alice", roles=["admin"]), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True and data["reason"] is None
    assert data["header"]["typ"] == "at+jwt"
    assert data["claims"]["sub"] == "alice"
    assert_admin_user(data["user"], "alice", "jwt")
    assert all(c["ok"] in (True, None) for c in data["checks"])
    assert data["endpoint"] == server.endpoint


def test_json_output_for_an_expired_token(capsys, server):
    code, out = verify(capsys, server, server.issue_token(expires_in=-600), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["valid"] is False and data["reason"] == "expired" and data["user"] is None
    exp = next(c for c in data["checks"] if c["name"] == "exp")
    assert exp["ok"] is False and exp["detail"].startswith("10 minutes ago")
    assert data["fix"] == {"text": "get a fresh access token (refresh it)", "setting": None}
    code, out = verify(capsys, server, server.issue_token(aud=["https://api.example.com"]), "--json")
    assert json.loads(out)["fix"] == {"text": "accept an audience the token carries", "setting": "AUTHGEAR_AUDIENCE"}


def test_json_output_when_unreachable_and_on_bad_input(capsys, server):
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, out, _ = run(capsys, "verify", server.issue_token(), "--endpoint", endpoint, "--json")
    assert code == 2
    data = json.loads(out)
    assert data["reason"] == "keys_unavailable" and "failed: connection refused" in data["keys_error"]
    code, out, _ = run(capsys, "verify", "tok", "--endpoint", "ftp://x", "--json")
    assert code == 2
    assert json.loads(out)["error"].startswith("bad setting")


# -- resolve -------------------------------------------------------------------------------------------------


def test_credential_values_may_begin_with_a_dash(capsys, server):
    """Opaque tokens and cookie values are base64url text: a leading "-" is a value, not an option."""
    server.reset_hits()
    for option in ("--token", "--cookie"):
        code, _out, err = run(capsys, "resolve", "--endpoint", server.endpoint, option, "-Zm9v-unknown")
        assert code == 1, err  # asked and not authenticated, not a usage error (2)
    assert server.hits("resolver") == 2


def test_resolve_a_valid_session_by_token_and_by_cookie(capsys, server):
    session = server.create_session("carol", roles=["admin", "ops"])
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", session.token)
    assert code == 0
    assert "X-Authgear-User-Id                   carol" in out
    assert out.rstrip().endswith("Result: AUTHENTICATED, user carol (roles: admin, ops)")
    for cookie in (session.cookie, session.cookie_value, f"Cookie: {session.cookie}"):
        assert run(capsys, "resolve", "--endpoint", server.endpoint, "--cookie", cookie)[0] == 0


def test_resolve_a_revoked_cookie_session(capsys, server):
    session = server.create_session("dave")
    server.revoke(session)
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--cookie", session.cookie)
    assert code == 1
    assert "X-Authgear-Session-Valid  false" in out
    assert "no longer valid; the resolver also clears the cookie" in out


def test_resolve_an_unknown_bearer_token(capsys, server):
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", "not-a-session")
    assert code == 1
    assert "(no X-Authgear-* header)" in out
    assert "an unknown, expired or revoked bearer token" in out


def test_resolve_json(capsys, server):
    session = server.create_session("erin", roles=["admin"])
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", session.token, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["authenticated"] is True and data["malformed"] is None
    assert_admin_user(data["user"], "erin", "resolver")
    assert data["headers"]["X-Authgear-User-Id"] == "erin"
    assert data["headers"]["X-Authgear-User-Roles"] == "admin"
    assert data["url"] == f"{server.endpoint}/_resolver/resolve"


@pytest.mark.parametrize("mode", ["500", "redirect"])
def test_resolver_failure_exits_two(capsys, server, mode):
    server.fail("resolver", mode)
    code, _out, err = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", "t")
    assert code == 2
    status = "500" if mode == "500" else "302"
    assert f"answered HTTP {status}; an app in resolver mode answers 503" in err


def test_a_malformed_resolver_answer_is_read_as_the_library_reads_it(capsys, server):
    server.fail("resolver", "invalid_answer")
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", "t")
    assert code == 2
    assert "X-Authgear-Session-Valid  maybe" in out
    assert out.rstrip().endswith(
        "Result: MALFORMED, malformed resolver answer: X-Authgear-Session-Valid is neither true nor false; "
        "an app in resolver mode answers 503"
    )
    code, out, _ = run(capsys, "resolve", "--endpoint", server.endpoint, "--token", "t", "--json")
    assert code == 2
    assert (
        json.loads(out)["malformed"] == "malformed resolver answer: X-Authgear-Session-Valid is neither true nor false"
    )


def test_resolver_unreachable_exits_two(capsys):
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, out, _err = run(capsys, "resolve", "--endpoint", endpoint, "--token", "t", "--json")
    assert code == 2
    assert json.loads(out)["error"] == (
        f"cannot reach the resolver at {endpoint}/_resolver/resolve: "
        f"GET {endpoint}/_resolver/resolve failed: connection refused"
    )


def test_resolve_refuses_credentials_that_cannot_be_a_header(capsys, server):
    code, _, err = run(capsys, "resolve", "--endpoint", server.endpoint, "--cookie", "session=a\nX-Evil: 1")
    assert code == 2
    assert "cannot be sent in a header" in err


@pytest.mark.parametrize(
    ("header", "claims", "failing"),
    [
        ({"alg": ["RS256"]}, {}, "alg"),
        ({"crit": ["exp"]}, {}, "header"),
        ({"typ": 5}, {}, "typ"),
        ({}, {"auth_time": "yesterday"}, "auth_time"),
        ({}, {"exp": None}, "exp"),
        ({}, {"exp": 10**30}, None),
        ({}, {"iat": True}, "iat"),
        ({}, {"aud": [1]}, "aud"),
        ({}, {"amr": "pwd"}, "roles"),
    ],
    ids=["alg-list", "crit", "typ-number", "auth-time-text", "exp-null", "exp-huge", "iat-bool", "aud-number", "amr"],
)
def test_hostile_members_are_explained_never_crash(capsys, server, header, claims, failing):
    head = {"alg": "RS256", "typ": "at+jwt", "kid": server.signing_key.kid, **header}
    body = {**server.claims_for("zoe"), **claims}
    signature = server.issue_token().split(".")[2]
    token = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(body).encode())}.{signature}"
    code, out = verify(capsys, server, token)
    assert code == 1  # the signature never matches these edited tokens
    if failing is not None:
        assert check_line(out, failing).lstrip().startswith("FAIL")
    assert result(out).startswith("Result: INVALID")


def test_verbose_shows_the_library_records_without_the_token(capsys, server):
    token = server.issue_token(expires_in=-600)
    code, _, err = run(capsys, "-v", "verify", token, "--endpoint", server.endpoint)
    assert code == 1
    assert "INFO flask_authgear: JWKS fetched (initial): 1 usable key(s)" in err
    assert token.split(".")[2][:16] not in err and token.split(".")[1][:16] not in err
    code, _, err = run(capsys, "verify", token, "--endpoint", server.endpoint)
    assert err == ""  # without -v the verdict speaks for itself


# -- the command line itself ---------------------------------------------------------------------------------


def test_version_option_prints_the_package_version(capsys):
    from flask_authgear import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"flask-authgear {__version__}\n"


def test_a_closed_output_pipe_ends_quietly():
    """``flask-authgear verify ... --json | head -1``: the reader goes away, no traceback follows."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "flask_authgear", "verify", "not-a-jwt", "--endpoint", "https://example.com", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the interpreter has even started: its first write meets a closed pipe
    err = process.stderr.read()
    assert process.wait(timeout=60) == 1
    assert err == b""


def test_health_reports_readiness_of_an_endpoint(capsys, server):
    code, out, _ = run(capsys, "health", "--endpoint", server.endpoint)
    assert code == 0
    assert json.loads(out)["ready"] is True
    code, out, _ = run(capsys, "health", "--endpoint", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 1
    assert "failed: connection refused" in json.loads(out)["last_error"]


def test_every_setting_comes_from_the_environment_below_the_options(capsys, server, monkeypatch):
    """The rule of the extension and the middleware: an option wins over AUTHGEAR_*, which fills the rest."""
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", "https://elsewhere.authgear.cloud")
    assert run(capsys, "verify", server.issue_token(), "--endpoint", server.endpoint)[0] == 0
    monkeypatch.setenv("AUTHGEAR_AUDIENCE", "https://another-api.example.com")
    code, out, _ = run(capsys, "verify", server.issue_token(), "--endpoint", server.endpoint)
    assert code == 1 and "aud" in out
