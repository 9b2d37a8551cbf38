"""The ``flask-authgear`` command line: one click group behind three doors.

* ``flask-authgear ...`` (the console script) and ``python -m flask_authgear ...`` call :func:`main`;
* ``flask authgear ...`` finds :data:`cli` through the ``flask.commands`` entry point, and there the commands
  use the app's own settings (its extension, else its ``AUTHGEAR_*`` config) unless ``--endpoint`` is given.

Commands: ``dev-server`` (the local Authgear-compatible server), ``token`` (mint from it), ``verify`` (explain
a JWT access token), ``resolve`` (ask the resolver endpoint), ``health`` (load the keys, report readiness),
``event`` (send the app a signed webhook event).

Exit status: 0 success (valid token, authenticated session), 1 a negative answer (invalid token, no
session), 2 a usage error or an endpoint that cannot be reached. Errors are one readable line, never a
traceback. Everything a token or a server says is printed with control characters escaped, so a crafted
token cannot drive the terminal.
"""

from . import dev, diagnose, events  # noqa: F401  (each registers its commands on the group)
from .base import cli, main

__all__ = ["cli", "main"]
