"""Loopback helpers shared by tests that start their own servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port with nobody listening on it right now (for a server to bind, or to be refused on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
