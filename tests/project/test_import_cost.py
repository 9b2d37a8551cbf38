"""What ``import flask_authgear`` and the pytest plugin cost, measured against Flask's own import in the same run.

Every check runs a fresh interpreter. Which modules get imported is exact, and the cost is counted in modules
loaded, which repeats on a busy machine where import times do not.
"""

from __future__ import annotations

import json
import pydoc
import subprocess
import sys

import flask_authgear

#: Loaded by a mode that needs them, never by the import: the resolver's cache and its backends, the JWT
#: modules' cryptography, the HTTP client, asyncio (for async handlers), the test kit.
HEAVY = (
    "requests",
    "requests_cache",
    "redis",
    "cryptography",
    "joserfc.jws",
    "urllib3",
    "asyncio",
    "flask_authgear.testing",
)


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def added_modules(before: str, code: str) -> int:
    """How many modules ``code`` loads in a fresh interpreter that already ran ``before``."""
    return len(loaded_after(f"{before}\n{code}")) - len(loaded_after(before))


def test_the_import_loads_no_mode_and_no_test_kit() -> None:
    assert heavy(loaded_after("import flask_authgear")) == set()


def test_a_jwt_mode_verifier_does_not_load_the_resolver_cache() -> None:
    modules = loaded_after(
        "from flask_authgear import Settings, Verifier\nVerifier(Settings(endpoint='https://myapp.authgear.cloud'))"
    )
    assert "joserfc.jws" in modules
    assert {m for m in modules if m.partition(".")[0] in ("requests_cache", "redis")} == set()


def test_a_resolver_mode_verifier_loads_what_it_needs() -> None:
    modules = loaded_after(
        "from flask_authgear import Settings, Verifier\n"
        "Verifier(Settings(endpoint='https://myapp.authgear.cloud', mode='resolver')).close()"
    )
    assert {"requests_cache", "flask_authgear.core.resolver"} <= modules


def test_the_import_costs_at_most_half_of_flasks() -> None:
    """Counted in modules, which repeat on a shared machine where import times do not."""
    flask_own = added_modules("pass", "import flask")
    assert added_modules("import flask", "import flask_authgear") <= flask_own / 2


def test_help_and_dir_list_the_public_api() -> None:
    names = {"Authgear", "require_auth", "current_user", "verify_request", "AuthgearMiddleware", "Webhooks"}
    assert names <= set(dir(flask_authgear))
    assert all(name in vars(flask_authgear) for name in flask_authgear.__all__)
    text = pydoc.render_doc(flask_authgear, renderer=pydoc.plaintext)
    for entry in ("class Authgear(", "class AuthgearMiddleware(", "require_auth(", "current_user = "):
        assert f"\n    {entry}" in text, entry


def test_the_plugin_costs_at_most_half_of_flasks() -> None:
    """What every pytest run pays for the plugin (the package included), pytest and Flask apart, against the
    modules Flask itself loads."""
    flask_own = added_modules("pass", "import flask")
    assert added_modules("import pytest, flask", "import flask_authgear.pytest_plugin") <= flask_own / 2
