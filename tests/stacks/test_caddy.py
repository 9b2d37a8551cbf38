"""What only the Caddy example does; the behaviour both proxies share runs in tests/stacks/test_proxy_end_to_end.py."""

from __future__ import annotations

from flask_authgear.core.headers import ANSWER_HEADERS
from tests.support.caddy_server import CaddyServer


def test_the_caddyfile_removes_each_identity_header_by_name_before_asking() -> None:
    """Caddy from 2.10 until PR 7545 leaves a client's header the resolver did not send (none of those runs here)."""
    text = CaddyServer.example.read_text()
    ask = text.index("\n\t\tforward_auth ")
    for header in ANSWER_HEADERS:
        removal = text.lower().find(f"request_header -{header}\n")
        assert 0 <= removal < ask, header
    assert "-X-Authgear-*" not in text  # would also remove the webhook signature
