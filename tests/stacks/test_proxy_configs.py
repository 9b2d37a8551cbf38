"""The shipped proxy configurations overwrite every header the resolver may answer with.

The NGINX and Caddy examples also run for real in tests/stacks/test_proxy_end_to_end.py; Traefik is not run here, so its
file is checked for the settings its security depends on.
"""

from __future__ import annotations

import re

from flask_authgear.core.headers import ANSWER_HEADERS
from tests.support.examples import EXAMPLES


def _yaml_list(text: str, key: str) -> list[str]:
    block = re.search(rf"^(\s*){key}:\n((?:\1\s+- .*\n)+)", text, re.MULTILINE)
    assert block is not None, f"{key} not found"
    return [line.split("- ", 1)[1].strip().strip('"') for line in block.group(2).splitlines()]


def test_traefik_copies_every_resolver_header_and_sends_only_credentials() -> None:
    text = (EXAMPLES / "traefik" / "dynamic.yml").read_text()
    assert [h.lower() for h in _yaml_list(text, "authResponseHeaders")] == list(ANSWER_HEADERS)
    assert _yaml_list(text, "authRequestHeaders") == ["Authorization", "Cookie"]
    assert 'authResponseHeadersRegex: "^X-Authgear-"' in text
    assert "trustForwardHeader: false" in text
    assert 'address: "https://myapp.authgear.cloud/_resolver/resolve"' in text


def test_nginx_sets_every_resolver_header_from_the_resolver_answer() -> None:
    text = (EXAMPLES / "nginx" / "nginx.conf").read_text()
    for header in ANSWER_HEADERS:
        variable = "$authgear_" + header.removeprefix("x-authgear-").replace("-", "_")
        upstream = "$upstream_http_" + header.replace("-", "_")
        assert f"auth_request_set {variable} {upstream};" in text
        assert re.search(rf"proxy_set_header {re.escape(header)} {re.escape(variable)};", text, re.IGNORECASE)
    for directive in ("proxy_pass_request_body off;", "proxy_pass_request_headers off;", 'Content-Length "";'):
        assert directive in text
