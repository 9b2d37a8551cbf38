"""Clocks that move only when told to, so cache ages are exact and no test sleeps, and resolver-mode verifiers on
them."""

from __future__ import annotations

import threading
import time

from flask_authgear import Verifier
from flask_authgear.core.resolver import ResolverClient


class Clock:
    """A clock that only moves when told to: pass it where the library takes ``clock=``, then ``advance`` it."""

    def __init__(self, start: float = 10_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def wall_clock(offset: float = 0.0) -> Clock:
    """A clock that starts at the real time plus ``offset`` and moves only when told to.

    Real time, because stores written through requests-cache (sqlite, Redis) keep an expiry of their own.
    """
    return Clock(start=time.time() + offset)


def clocked(verifier: Verifier, clock: Clock) -> Verifier:
    """``verifier`` with its resolver client rebuilt on ``clock`` (both its monotonic and its wall clock)."""
    assert verifier.resolver is not None
    verifier.resolver.close()
    verifier.resolver = ResolverClient(verifier.settings, clock=clock, wall_clock=clock)
    return verifier
