"""The command line: ``flask-authgear`` verify, resolve, dev-server and token, and ``flask authgear``."""
