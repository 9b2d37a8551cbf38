"""Test kit: a local Authgear-compatible server and helpers for testing apps protected by flask-authgear.

``AuthgearTestServer`` is the server (also the ``authgear_server`` pytest fixture); ``AuthgearClient`` and
``client_for`` give Flask test clients signed in as a chosen user.
"""

from .client import AuthgearClient, client_for
from .server import FAILURES, AuthgearTestServer, TestSession, new_signing_key

__all__ = ["FAILURES", "AuthgearClient", "AuthgearTestServer", "TestSession", "client_for", "new_signing_key"]
