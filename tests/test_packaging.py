"""How the package is put together: what imports what, and the built sdist and wheel."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_core_imports_neither_flask_nor_click():
    """The core serves any WSGI framework: importing it must not drag in Flask or its command-line library."""
    probe = "import sys, flask_authgear.core, flask_authgear.wsgi; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json; {probe}"], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert {"flask", "click", "flask_authgear.flask", "flask_authgear.cli"}.isdisjoint(loaded)
    assert "flask_authgear.core.verifier" in loaded
