"""The local server's fault switches: its endpoints fail in the ways a network or a broken Authgear fails, and
count the requests they answer, so that tests see what the library does when Authgear misbehaves.

A server that refuses connections altogether is the server stopped and started again:
:meth:`AuthgearTestServer.unreachable() <flask_authgear.testing.AuthgearTestServer.unreachable>`.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from werkzeug.wrappers import Request, Response

__all__ = ["FAILURES", "FaultSwitches", "json_response"]

#: The endpoints a switch applies to, as :meth:`FaultSwitches.fail` and :meth:`FaultSwitches.hits` name them.
_TARGETS = ("discovery", "jwks", "resolver", "token")


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _slow(delay: float, location: str) -> Response:
    time.sleep(delay)
    return Response("late", status=504)


def _drip(delay: float) -> Iterator[bytes]:
    """A body that trickles one byte at a time, to test total deadlines rather than per-read timeouts."""
    end = time.monotonic() + delay
    yield b'{"keys": ['
    while time.monotonic() < end:
        time.sleep(0.05)
        yield b" "
    yield b"]}"


#: What each failure answers instead of the endpoint, given the switch's ``delay`` and redirect ``location``.
_ANSWERS: dict[str, Callable[[float, str], Response]] = {
    "500": lambda delay, location: Response("internal error", status=500),
    "html": lambda delay, location: Response("<html><body>Bad gateway</body></html>", content_type="text/html"),
    "empty": lambda delay, location: json_response({}),
    "bad_keys": lambda delay, location: json_response({"keys": "x"}),
    "garbage": lambda delay, location: Response(b"\x00\xff{not json", content_type="application/json"),
    "oversized": lambda delay, location: json_response({"keys": [], "padding": "x" * (2 * 1024 * 1024)}),
    "slow": _slow,
    "drip": lambda delay, location: Response(_drip(delay), content_type="application/json", direct_passthrough=True),
    "redirect": lambda delay, location: Response("", status=302, headers={"Location": location}),
    # a resolver answer that no real Authgear sends
    "invalid_answer": lambda delay, location: Response("", headers={"X-Authgear-Session-Valid": "maybe"}),
}
#: What a ``fail(..)`` switch can make an endpoint do.
FAILURES = tuple(_ANSWERS)


class FaultSwitches:
    """``fail``, ``heal`` and ``failing`` for the server's endpoints, and the count of requests each answered."""

    def __init__(self) -> None:
        self._switches_lock = threading.Lock()
        #: The switched endpoints, each with the answer it gives instead.
        self._failures: dict[str, Callable[[], Response]] = {}
        self._hits: Counter[str] = Counter()

    def fail(
        self, target: str, mode: str, *, delay: float = 2.0, location: str = "http://203.0.113.1/elsewhere"
    ) -> None:
        """Make ``target`` (discovery, jwks, resolver, token or all) misbehave: one of :data:`FAILURES`."""
        if mode not in FAILURES:
            raise ValueError(f"unknown failure {mode!r}; choose from {', '.join(FAILURES)}")
        if target not in (*_TARGETS, "all"):
            raise ValueError(f"unknown target {target!r}")
        with self._switches_lock:
            for name in _TARGETS if target == "all" else (target,):
                self._failures[name] = functools.partial(_ANSWERS[mode], delay, location)

    def heal(self, target: str = "all") -> None:
        with self._switches_lock:
            for name in _TARGETS if target == "all" else (target,):
                self._failures.pop(name, None)

    @contextmanager
    def failing(self, target: str, mode: str, **options: Any) -> Iterator[Self]:
        """Context manager: ``target`` fails (see :meth:`fail`) inside the block and is healed after it."""
        self.fail(target, mode, **options)
        try:
            yield self
        finally:
            self.heal(target)

    def hits(self, target: str) -> int:
        """How many requests ``target`` (discovery, jwks, resolver, token) has answered."""
        with self._switches_lock:
            return self._hits[target]

    def reset_hits(self) -> None:
        with self._switches_lock:
            self._hits.clear()

    def _answer(self, target: str, handler: Callable[[Request], Response], request: Request) -> Response:
        """Count the request to ``target``, then answer it with ``handler``, or as the switch makes it fail."""
        with self._switches_lock:
            self._hits[target] += 1
            failure = self._failures.get(target)
        return handler(request) if failure is None else failure()
