"""Resolver-mode verifiers on an injected clock, so cache ages are exact and no test waits for a TTL."""

from __future__ import annotations

import time

from flask_authgear import Verifier
from flask_authgear.core.resolver import ResolverClient

from .jwt import Clock


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
