"""Resolver mode: ask Authgear's ``/_resolver/resolve`` endpoint who a request's credentials belong to.

What is sent, and why: a ``GET`` to ``resolver_url`` carrying only ``Authorization`` and ``Cookie`` (the
credentials the resolver reads), with ``Host`` set to the Authgear host (Authgear picks the project by host,
so the client's ``Host`` or ``X-Forwarded-*`` would let a client choose the project). Never a body. No
redirect is followed, no cookie is kept between calls, no ``.netrc`` is read, and the whole call has one
deadline (``http_timeout``).

What is believed (read by :mod:`flask_authgear.core.headers`): only ``X-Authgear-Session-Valid: true``
authenticates. ``false`` or no ``X-Authgear-*`` header at all means "not authenticated" (401). Anything else
(a status other than 200, a redirect, a body, a timeout, an unknown Session-Valid value, a valid session
without a user id, unparsable values) is a malformed answer: 503, fail closed, and never cached.

Answers are cached (see :mod:`flask_authgear.core.cache`): positive ones for ``resolver_cache_ttl`` seconds
(the revocation delay of this mode), negative ones for ``resolver_negative_ttl``, measured by this process
from when the resolver answered, even for an entry another process wrote to a shared store. Concurrent misses for the
same credentials make one resolver call; the others wait for its answer.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NoReturn

import requests
from requests.utils import get_environ_proxies

from ..config import Settings
from ..errors import ProviderUnavailableError
from .cache import SharedCache, local_key
from .headers import ANSWER_PREFIX, Answer, MalformedAnswer, answer_headers, parse_answer
from .http import describe_error, new_session
from .lru import LRU

__all__ = ["Probe", "ResolverClient", "ResolverStats"]

logger = logging.getLogger("flask_authgear")

#: After a cache backend error (Redis down, sqlite locked), go straight to the resolver for this long.
_BACKEND_RETRY_AFTER = 5.0


@dataclass(slots=True)
class ResolverStats:
    """Counters for :meth:`Verifier.health`; read them, never write them."""

    local_hits: int = 0
    shared_hits: int = 0
    #: Calls to the resolver: one for each lookup that neither cache level answered.
    resolver_calls: int = 0
    failures: int = 0
    coalesced: int = 0
    backend_errors: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Probe:
    """What one uncached resolver call said, for tools that show the answer itself (``flask-authgear resolve``)."""

    url: str
    #: The HTTP status, or None when no answer came.
    status: int | None
    #: The ``X-Authgear-*`` headers as the resolver sent them.
    headers: dict[str, str]
    #: Whether the answer carries a ``Set-Cookie`` (Authgear clears a cookie that is no longer valid).
    clears_cookie: bool
    answer: Answer
    #: Why an app would answer 503 for this call; None when the answer is usable.
    error: str | None


class ResolverClient:
    """Calls the resolver through the two cache levels, one call per key at a time. Thread-safe.

    ``clock`` (monotonic) times the in-process entries and the backend's pause after an error; ``wall_clock``
    dates the shared entries, which other hosts read. Tests inject both, so no test waits for a TTL.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = settings.resolver_url
        self.host = settings.authgear_host
        #: In-process answers with their expiry on ``clock``, by :func:`local_key`.
        self.local: LRU[bytes, tuple[Answer, float]] = LRU(settings.resolver_local_cache_size)
        #: The store other processes share (sqlite, Redis); with ``cache="memory"`` the local level is the cache.
        self.shared = None if settings.cache == "memory" else SharedCache(settings, wall_clock)
        self._clock = clock
        self._session = new_session(settings.http_timeout)
        # trust_env off: no .netrc may replace the forwarded Authorization; proxies from the environment still apply.
        self._session.trust_env = False
        self._session.proxies = dict(get_environ_proxies(self.url))
        self.settings = settings
        #: The lookup under way for each local key: other threads asking for it wait for its answer.
        self._inflight: dict[bytes, Future[Answer]] = {}
        self._lock = threading.Lock()
        self._backend_down_until = 0.0
        self.stats = ResolverStats()

    # -- the one public call -----------------------------------------------------------------------------

    def resolve(self, authorization: str | None, cookie: str | None) -> Answer:
        """The user these credentials belong to, or None; :class:`ProviderUnavailableError` when unsure."""
        local = local_key(authorization, cookie)
        hit = self._local_hit(local)
        if hit is not None:
            self.stats.local_hits += 1
            return hit[0]
        with self._lock:
            leader = local not in self._inflight
            flight = self._inflight.setdefault(local, Future())
        if not leader:
            self.stats.coalesced += 1
            try:
                # The leader may try the cache backend and then the resolver, each within the deadline.
                return flight.result(timeout=2 * self.settings.http_timeout + 1.0)
            except Exception:  # the leader failed, or took longer than it can
                raise ProviderUnavailableError() from None
        try:
            answer = self._lookup(local, authorization, cookie)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(local, None)
        flight.set_result(answer)
        return answer

    def probe(self, authorization: str | None, cookie: str | None) -> Probe:
        """Ask the resolver once, past both caches, and keep what it said; never raises for a failed call.

        The same request and the same reading of the answer as :meth:`resolve`, so a diagnosis matches what
        the app decides.
        """
        try:
            response = self._get(self._headers(authorization, cookie))
        except ProviderUnavailableError:
            return Probe(self.url, None, {}, False, None, self.stats.last_error)
        shown = {name: value for name, value in response.headers.items() if name.lower().startswith(ANSWER_PREFIX)}
        clears = "Set-Cookie" in response.headers
        try:
            answer, _ = self._read_live(response)
        except ProviderUnavailableError:
            return Probe(self.url, response.status_code, shown, clears, None, self.stats.last_error)
        return Probe(self.url, response.status_code, shown, clears, answer, None)

    def health(self) -> dict[str, Any]:
        """Cache and resolver counters for :meth:`Verifier.health`; never calls anything."""
        s = self.stats
        shared = self.shared
        return {
            "backend": "memory" if shared is None else shared.kind,
            "hits": s.local_hits + s.shared_hits,
            "misses": s.resolver_calls,
            "local_entries": len(self.local),
            **dataclasses.asdict(s),
            # Shared entries not in our form at all, and entries that failed verification (tampered, or moved
            # to another key): both are misses, not outages.
            "malformed_entries": 0 if shared is None else shared.malformed_entries,
            "rejected_entries": 0 if shared is None else shared.rejected_entries,
        }

    def close(self) -> None:
        """Release connections and the cache backend."""
        self._session.close()
        if self.shared is not None:
            self.shared.close()

    # -- the steps ---------------------------------------------------------------------------------------

    def _headers(self, authorization: str | None, cookie: str | None) -> dict[str, str | None]:
        # requests sends no header whose value is None.
        return {"Host": self.host, "Accept": "*/*", "Authorization": authorization, "Cookie": cookie}

    def _lookup(self, local: bytes, authorization: str | None, cookie: str | None) -> Answer:
        hit = self._local_hit(local)  # another leader may have finished just before this one started
        if hit is not None:
            self.stats.local_hits += 1
            return hit[0]
        shared = self.shared if self._clock() >= self._backend_down_until else None
        if shared is not None:
            try:
                stored = shared.get(authorization, cookie)
            except Exception as exc:  # the cache backend failed (Redis away, sqlite locked)
                self._backend_failed("reading", exc)
                shared = None
            else:
                if stored is not None:
                    answer, age = stored
                    # Good for this process only while younger than its own TTL, whatever the writer's was. An
                    # entry dated in the future (the writer's clock runs ahead) is not believed either. Both are
                    # misses: the resolver is asked and its answer replaces the entry.
                    ttl = self._ttl(answer)
                    if 0 <= age < ttl:  # written as a range, so that a NaN age is refused too
                        self.stats.shared_hits += 1
                        self.local[local] = (answer, self._clock() + ttl - age)
                        return answer
        answer, headers = self._read_live(self._get(self._headers(authorization, cookie)))
        ttl = self._ttl(answer)
        if ttl > 0:
            self.local[local] = (answer, self._clock() + ttl)
            if shared is not None:
                try:
                    shared.put(authorization, cookie, headers, ttl)
                except Exception as exc:
                    self._backend_failed("writing", exc)
        return answer

    def _local_hit(self, local: bytes) -> tuple[Answer] | None:
        """``(answer,)`` while the in-process entry is fresh, else None (so a cached None differs from a miss)."""
        entry = self.local.get(local)
        if entry is None or self._clock() >= entry[1]:
            return None
        return (entry[0],)

    def _ttl(self, answer: Answer) -> float:
        """How long this process reuses an answer: the one rule for both cache levels."""
        return self.settings.resolver_cache_ttl if answer is not None else self.settings.resolver_negative_ttl

    def _get(self, headers: dict[str, str | None]) -> requests.Response:
        """One GET to the resolver, or :class:`ProviderUnavailableError`."""
        self.stats.resolver_calls += 1
        try:
            # The session's deadline adapter bounds the whole call.
            return self._session.get(self.url, headers=headers, allow_redirects=False, stream=True)
        except Exception as exc:
            self._failed(f"GET {self.url} failed: {describe_error(exc)}")

    def _read_live(self, response: requests.Response) -> tuple[Answer, dict[str, str]]:
        """Check and parse a fresh resolver response; every surprise is a 503."""
        try:
            if response.status_code != 200:
                self._failed(f"GET {self.url} answered HTTP {response.status_code}")
            try:
                first = next(response.iter_content(1024), b"")
            except requests.RequestException as exc:
                self._failed(f"reading the answer of GET {self.url} failed: {describe_error(exc)}")
            if first:
                self._failed("the resolver answered with a body; Authgear's resolver never does")
        finally:
            response.close()
        headers = answer_headers(response.headers)
        try:
            answer = parse_answer(headers, "resolver")
        except MalformedAnswer as exc:
            self._failed(f"malformed resolver answer: {exc}")
        self.stats.last_error = None  # the resolver answers again
        return answer, headers

    def _failed(self, message: str) -> NoReturn:
        self.stats.failures += 1
        self.stats.last_error = message
        logger.warning("%s", message)
        raise ProviderUnavailableError()

    def _backend_failed(self, action: str, exc: Exception) -> None:
        self.stats.backend_errors += 1
        self._backend_down_until = self._clock() + _BACKEND_RETRY_AFTER
        logger.warning(
            "resolver cache backend failed while %s (%s); asking the resolver directly for %gs",
            action,
            type(exc).__name__,
            _BACKEND_RETRY_AFTER,
        )
