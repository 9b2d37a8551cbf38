"""Small, strict HTTP fetching for discovery and JWKS: no redirects, a total deadline, a size cap."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

#: Largest discovery or JWKS document we read.
MAX_DOCUMENT_BYTES = 256 * 1024


class FetchError(Exception):
    """A fetch failed; the message is for logs and names no secret."""


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "flask-authgear"
    session.headers["Accept"] = "application/json"
    return session


def fetch_json(session: requests.Session, url: str, timeout: float, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """GET ``url`` and parse JSON, or raise :class:`FetchError`. The whole call ends within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    try:
        with session.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise FetchError(f"GET {url} answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(16384):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"GET {url} answered more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"GET {url} did not finish within {timeout:g}s")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise FetchError(f"GET {url} failed: {type(exc).__name__}") from None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise FetchError(f"GET {url} did not answer JSON") from None
