"""Test kit: a local Authgear-compatible server and helpers for testing apps protected by flask-authgear.

``AuthgearTestServer`` is the server (also the ``authgear_server`` pytest fixture); ``AuthgearClient`` and
``client_for`` give Flask test clients signed in as a chosen user (or machine); ``configure`` points a Flask
app at the server, ``AuthgearMiddleware(app, **server.settings())`` a WSGI app; ``server.send_event(...)`` posts
signed webhook events (samples in ``events``); ``MachineClient`` is a machine application registered on the
server.
"""

from .client import AuthgearClient, client_for, configure
from .events import EventResponse, HookError
from .faults import FAILURES
from .model import MachineClient, TestSession, new_signing_key
from .server import AuthgearTestServer

__all__ = [
    "FAILURES",
    "AuthgearClient",
    "AuthgearTestServer",
    "EventResponse",
    "HookError",
    "MachineClient",
    "TestSession",
    "client_for",
    "configure",
    "new_signing_key",
]
