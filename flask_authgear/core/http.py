"""Calls to Authgear (discovery, JWKS, resolver): one deadline for each whole call, no redirects, a size cap.

Why a deadline of our own: requests' ``timeout`` bounds each socket read, not the call. A server that sends
one header line or one body byte just before every read times out holds a request, and the JWKS lock, for
as long as it likes. Here every socket read of a response waits at most until the call's deadline, so
connect, headers and body together end by ``http_timeout``; a timeout surfaces as a ``requests`` error, which
callers turn into 503.

The mechanism: sessions carry :class:`_DeadlineAdapter`, whose connections read responses through
:class:`_DeadlineReader`. The deadline lives in a context variable, so a block of calls can share one
(:func:`deadline`: the JWKS cache's discovery and JWKS fetch together) and a nested call never extends it.

Why urllib3's connection classes: no public API bounds a whole response. urllib3's ``Timeout(total=...)``
bounds connect and then each read, as its documentation says, and http.client reads the header lines before
any hook of requests or urllib3 runs. So the pools' connection class is ours; ``make test-urllib3-1`` runs
the tests that call out on urllib3 1.26 as well as on 2.x, the two majors the package allows.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import math
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.poolmanager import pool_classes_by_scheme as _URLLIB3_POOLS

from . import json

__all__ = ["FetchError", "deadline", "describe_error", "fetch_json", "new_session"]

#: Largest discovery or JWKS document we read.
_MAX_DOCUMENT_BYTES = 256 * 1024

#: The monotonic time by which the current call (or block of calls) must end.
_DEADLINE: ContextVar[float] = ContextVar("flask_authgear_deadline", default=math.inf)


class FetchError(Exception):
    """A fetch failed; the message is for logs and names no secret."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Calls made in this block through our sessions end within ``seconds`` from now (or an earlier deadline)."""
    token = _DEADLINE.set(min(_DEADLINE.get(), time.monotonic() + seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class _DeadlineReader(io.RawIOBase):
    """The socket file of one response, each read waiting only for the time left before the deadline."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the call's deadline passed")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()  # lets the connection close the socket once it is done with it
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading status line, headers and body through a :class:`_DeadlineReader`."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, _DEADLINE.get()))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_DEADLINE_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


def _use_deadline_pools(manager: PoolManager) -> PoolManager:
    # SOCKS proxy managers bring pool classes of their own; those keep requests' per-read timeout.
    if manager.pool_classes_by_scheme is _URLLIB3_POOLS:
        manager.pool_classes_by_scheme = _DEADLINE_POOLS
    return manager


class _DeadlineAdapter(HTTPAdapter):
    """A transport adapter that gives each call one deadline, ``timeout`` seconds, for connect, headers and body.

    The deadline replaces any ``timeout`` passed to the call; a body read later (``stream=True``) keeps it.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _use_deadline_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        return _use_deadline_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        with deadline(self.timeout):
            left = _DEADLINE.get() - time.monotonic()
            if left <= 0:
                raise requests.Timeout("the call's deadline passed before it started")
            kwargs["timeout"] = (left, left)  # connect, first read; requests passes its options by keyword
            return super().send(request, *args, **kwargs)


def new_session(timeout: float) -> requests.Session:
    """A session for calls to Authgear: each call ends within ``timeout`` seconds, sends only our own headers,
    and keeps no cookie (a policy that allows no domain accepts and returns none), so that one user's
    ``Set-Cookie`` never reaches another."""
    session = requests.Session()
    adapter = _DeadlineAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.cookies = RequestsCookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers.clear()
    session.headers["User-Agent"] = "flask-authgear"
    session.headers["Accept"] = "application/json"
    return session


def fetch_json(session: requests.Session, url: str) -> dict[str, Any]:
    """GET ``url`` and parse a strict JSON object, or raise :class:`FetchError`; the session's deadline bounds the
    call."""
    try:
        with session.get(url, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise FetchError(f"GET {url} answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(16384):
                body += chunk
                if len(body) > _MAX_DOCUMENT_BYTES:
                    raise FetchError(f"GET {url} answered more than {_MAX_DOCUMENT_BYTES} bytes")
    except requests.RequestException as exc:
        raise FetchError(f"GET {url} failed: {describe_error(exc)}") from None
    try:
        return json.loads_object(bytes(body))
    except ValueError:
        raise FetchError(f"GET {url} did not answer a JSON object") from None


def describe_error(exc: Exception) -> str:
    """What failed, in words an operator can act on: a timeout, the DNS lookup, a refused or reset connection,
    TLS (with OpenSSL's reason), else the error's class. The words name no URL; callers add the one they called."""
    causes = _causes(exc)
    # requests reports a timeout met while reading a body as a ConnectionError whose text says so.
    if any(isinstance(e, requests.Timeout | TimeoutError) or "timed out" in str(e) for e in causes):
        return "timed out"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed (unknown host)"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason or cause.strerror})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, requests.exceptions.ProxyError):
            return "the HTTP proxy failed"
    return type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: requests wraps urllib3's error in its arguments, urllib3 its cause in
    ``reason``, and each keeps the socket's error as its cause or context."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 16:
        current = todo.pop(0)
        if current not in found:
            found.append(current)
            linked = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
            todo.extend(cause for cause in linked if isinstance(cause, BaseException))
    return found
