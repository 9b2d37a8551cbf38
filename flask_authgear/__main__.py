"""``python -m flask_authgear``: the same command line as ``flask-authgear``."""

from .cli import main

raise SystemExit(main())
