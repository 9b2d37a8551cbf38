"""Test kit: a local Authgear-compatible server and helpers for testing apps protected by flask-authgear."""

from .server import FAILURES, AuthgearTestServer, TestSession, new_signing_key

__all__ = ["FAILURES", "AuthgearTestServer", "TestSession", "new_signing_key"]
