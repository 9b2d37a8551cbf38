"""Resolver mode: ask Authgear's ``/_resolver/resolve`` endpoint who a request's credentials belong to.

What is sent, and why: a ``GET`` to ``resolver_url`` carrying only ``Authorization`` and ``Cookie`` (the
credentials the resolver reads), with ``Host`` set to the Authgear host (Authgear picks the project by host,
so the client's ``Host`` or ``X-Forwarded-*`` would let a client choose the project). Never a body. No
redirect is followed, no cookie is kept between calls, no ``.netrc`` is read, and the whole call has one
deadline (``http_timeout``).

What is believed: only ``X-Authgear-Session-Valid: true`` authenticates. ``false`` or no ``X-Authgear-*``
header at all means "not authenticated" (401). Anything else (a status other than 200, a redirect, a body,
a timeout, an unknown Session-Valid value, a valid session without a user id, unparsable values) is a
malformed answer: 503, fail closed, and never cached.

Answers are cached (see :mod:`flask_authgear.core.cache`): positive ones for ``resolver_cache_ttl`` seconds
(the revocation delay of this mode), negative ones for ``resolver_negative_ttl``. Concurrent misses for the
same credentials make one resolver call; the others wait for its answer.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NoReturn

import requests
import urllib3
from requests.cookies import RequestsCookieJar
from requests.utils import get_environ_proxies
from requests_cache.models.response import CachedResponse

from ..config import Settings
from ..errors import ProviderUnavailableError
from ..user import NO_CLAIMS, AuthgearUser, Source
from .cache import ANSWER_PREFIX, CredentialKeyer, LocalCache, SharedCache, cache_secret, local_key
from .http import limit_calls

logger = logging.getLogger("flask_authgear")

SESSION_VALID = "x-authgear-session-valid"
USER_ID = "x-authgear-user-id"
USER_ANONYMOUS = "x-authgear-user-anonymous"
USER_VERIFIED = "x-authgear-user-verified"
USER_CAN_REAUTHENTICATE = "x-authgear-user-can-reauthenticate"
USER_ROLES = "x-authgear-user-roles"
SESSION_AMR = "x-authgear-session-amr"
SESSION_AUTHENTICATED_AT = "x-authgear-session-authenticated-at"
#: Every header Authgear's resolver may answer with; a proxy must overwrite each one of them.
ANSWER_HEADERS = (
    SESSION_VALID,
    USER_ID,
    USER_ANONYMOUS,
    USER_VERIFIED,
    USER_CAN_REAUTHENTICATE,
    USER_ROLES,
    SESSION_AMR,
    SESSION_AUTHENTICATED_AT,
)
_USER_HEADERS = frozenset(ANSWER_HEADERS) - {SESSION_VALID}

_USER_ID = re.compile(r"[\x21-\x7e]{1,256}")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_LIST_SEPARATORS = re.compile(r"[\s,]+")
#: After a cache backend error (Redis down, sqlite locked), go straight to the resolver for this long.
BACKEND_RETRY_AFTER = 5.0

#: An answer: the user, or None for "not authenticated".
Answer = AuthgearUser | None


class MalformedAnswer(ValueError):
    """The resolver (or proxy) answered something Authgear never sends; the message names no value."""


def _flag(headers: Mapping[str, str], name: str) -> bool:
    value = headers.get(name)
    if value is None:
        return False
    if value == "true":
        return True
    if value == "false":
        return False
    raise MalformedAnswer(f"{name} is not true or false")


def parse_answer(headers: Mapping[str, str], source: Source = "resolver") -> Answer:
    """Turn ``X-Authgear-*`` headers (lowercase names) into a user, None (not authenticated), or raise.

    Raises :class:`MalformedAnswer` for anything Authgear does not send, so callers fail closed with 503.
    """
    valid = headers.get(SESSION_VALID)
    if valid is None:
        # Other X-Authgear-* names (a future Authgear header, a client's invention) are simply not read.
        if any(name in _USER_HEADERS for name in headers):
            raise MalformedAnswer("user headers without X-Authgear-Session-Valid")
        return None  # no credentials, or an invalid bearer token: Authgear sends no header at all
    if valid == "false":
        return None
    if valid != "true":
        raise MalformedAnswer("X-Authgear-Session-Valid is neither true nor false")
    user_id = headers.get(USER_ID)
    if user_id is None or _USER_ID.fullmatch(user_id) is None:
        raise MalformedAnswer("a valid session without a usable user id")
    roles = frozenset(r.strip() for r in headers.get(USER_ROLES, "").split(",") if r.strip())
    amr = tuple(a for a in _LIST_SEPARATORS.split(headers.get(SESSION_AMR, "")) if a)
    authenticated_at = None
    at = headers.get(SESSION_AUTHENTICATED_AT)
    if at is not None:
        if _UNIX_SECONDS.fullmatch(at) is None:
            raise MalformedAnswer("X-Authgear-Session-Authenticated-At is not unix seconds")
        try:
            authenticated_at = datetime.fromtimestamp(int(at), tz=timezone.utc)
        except (OverflowError, ValueError, OSError):
            raise MalformedAnswer("X-Authgear-Session-Authenticated-At is out of range") from None
    return AuthgearUser(
        id=user_id,
        is_anonymous=_flag(headers, USER_ANONYMOUS),
        is_verified=_flag(headers, USER_VERIFIED),
        can_reauthenticate=_flag(headers, USER_CAN_REAUTHENTICATE),
        roles=roles,
        amr=amr,
        authenticated_at=authenticated_at,
        claims=NO_CLAIMS,
        source=source,
    )


def answer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``X-Authgear-*`` headers of a response, by lowercase name; every other header is dropped."""
    return {name.lower(): value for name, value in headers.items() if name.lower().startswith(ANSWER_PREFIX)}


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that accepts and returns nothing: one user's Set-Cookie must never reach another."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _harden(session: requests.Session, url: str) -> None:
    session.cookies = RequestsCookieJar(policy=_NoCookies())
    # trust_env off: no .netrc may replace the forwarded Authorization; proxies from the environment still apply.
    session.trust_env = False
    session.proxies = dict(get_environ_proxies(url))
    session.headers.clear()
    session.headers["User-Agent"] = "flask-authgear"


@dataclass(slots=True)
class ResolverStats:
    """Counters for :meth:`Verifier.health`; read them, never write them."""

    local_hits: int = 0
    shared_hits: int = 0
    #: Lookups that got past the local level (shared hits plus misses).
    lookups: int = 0
    resolver_calls: int = 0
    failures: int = 0
    coalesced: int = 0
    backend_errors: int = 0
    rejected_entries: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer = None
    failed: bool = True


class ResolverClient:
    """Calls the resolver through the two cache levels, one call per key at a time. Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.resolver_url
        self.host = settings.authgear_host
        self.keyer = CredentialKeyer(cache_secret(settings), f"{self.url}\n{self.host}")
        self.local: LocalCache[Answer] = LocalCache(settings.resolver_local_cache_size)
        self.shared = SharedCache(settings, self.keyer)
        _harden(self.shared.session, self.url)
        self._direct = requests.Session()
        _harden(self._direct, self.url)
        limit_calls(self.shared.session, settings.http_timeout)
        limit_calls(self._direct, settings.http_timeout)
        self._positive_ttl = settings.resolver_cache_ttl
        self._negative_ttl = settings.resolver_negative_ttl
        self._timeout = settings.http_timeout
        #: One deadline for connect and answer together (a float would allow each its own).
        self._deadline = urllib3.Timeout(total=settings.http_timeout)
        self._inflight: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._backend_down_until = 0.0
        self.stats = ResolverStats()

    # -- the one public call -----------------------------------------------------------------------------

    def resolve(self, authorization: str | None, cookie: str | None) -> Answer:
        """The user these credentials belong to, or None; :class:`ProviderUnavailableError` when unsure."""
        local = local_key(authorization, cookie)
        hit = self.local.get(local)
        if hit is not None:
            self.stats.local_hits += 1
            return hit[0]
        key = self.keyer.key(authorization, cookie)
        with self._lock:
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[key] = _Flight()
        if not leader:
            self.stats.coalesced += 1
            # The leader may try the cache backend and then the resolver, each within the deadline.
            if not flight.done.wait(2 * self._timeout + 1.0) or flight.failed:
                raise ProviderUnavailableError()
            return flight.answer
        try:
            flight.answer = self._lookup(key, local, authorization, cookie)
            flight.failed = False
            return flight.answer
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            flight.done.set()

    def cached_user(self, authorization: str | None, cookie: str | None) -> AuthgearUser | None:
        """The user of a fresh positive answer in the in-process cache, else None; never calls anything.

        The verifier's shortcut for a repeated credential: a miss, or a cached "not authenticated", goes the
        whole way through :meth:`resolve`.
        """
        hit = self.local.get(local_key(authorization, cookie))
        if hit is None or hit[0] is None:
            return None
        self.stats.local_hits += 1
        return hit[0]

    def health(self) -> dict[str, Any]:
        """Cache and resolver counters for :meth:`Verifier.health`; never calls anything."""
        s = self.stats
        return {
            "backend": self.shared.kind,
            "hits": s.local_hits + s.shared_hits,
            "local_hits": s.local_hits,
            "shared_hits": s.shared_hits,
            "misses": s.lookups - s.shared_hits,
            "resolver_calls": s.resolver_calls,
            "failures": s.failures,
            "coalesced": s.coalesced,
            "backend_errors": s.backend_errors,
            "rejected_entries": s.rejected_entries,
            "local_entries": len(self.local),
            "last_error": s.last_error,
        }

    def close(self) -> None:
        """Release connections and the cache backend."""
        self._direct.close()
        self.shared.close()

    # -- the steps ---------------------------------------------------------------------------------------

    def _headers(self, authorization: str | None, cookie: str | None) -> dict[str, str]:
        headers = {"Host": self.host, "Accept": "*/*"}
        if authorization is not None:
            headers["Authorization"] = authorization
        if cookie is not None:
            headers["Cookie"] = cookie
        return headers

    def _lookup(self, key: str, local: bytes, authorization: str | None, cookie: str | None) -> Answer:
        hit = self.local.get(local)  # another leader may have finished just before this one started
        if hit is not None:
            self.stats.local_hits += 1
            return hit[0]
        self.stats.lookups += 1
        headers = self._headers(authorization, cookie)
        use_backend = time.monotonic() >= self._backend_down_until
        response: requests.Response | None = None
        if use_backend:
            try:
                response = self._get(self.shared.session, headers)
            except ProviderUnavailableError:
                raise
            except Exception as exc:  # the cache backend failed (Redis away, sqlite locked, bad entry)
                self._backend_failed("reading", exc)
                use_backend = False
        if isinstance(response, CachedResponse):
            cached = self._from_cache(key, local, response)
            if cached is not None:
                return cached[0]
            response = None
        if response is None:
            response = self._get(self._direct, headers)
        return self._answer_live(key, local, response, use_backend)

    def _answer_live(self, key: str, local: bytes, response: requests.Response, use_backend: bool) -> Answer:
        answer, stored = self._read_live(response)
        ttl = self._positive_ttl if answer is not None else self._negative_ttl
        if ttl > 0:
            self.local.put(local, answer, ttl)
            if use_backend:
                try:
                    self.shared.store(key, stored, ttl)
                except Exception as exc:
                    self._backend_failed("writing", exc)
        return answer

    def _get(self, session: requests.Session, headers: dict[str, str]) -> requests.Response:
        """One GET, or :class:`ProviderUnavailableError`; a cache hit never reaches the network."""
        try:
            response: requests.Response = session.get(
                self.url,
                headers=headers,
                allow_redirects=False,
                stream=True,
                timeout=self._deadline,  # type: ignore[arg-type]  # requests passes urllib3 timeouts on
            )
        except requests.RequestException as exc:
            self.stats.resolver_calls += 1
            self._failed(f"the resolver call failed: {type(exc).__name__}")
        except Exception as exc:
            if session is self.shared.session:
                raise  # the cache backend failed: the caller asks the resolver directly
            self.stats.resolver_calls += 1
            self._failed(f"the resolver call failed: {type(exc).__name__}")
        if not isinstance(response, CachedResponse):
            self.stats.resolver_calls += 1
        return response

    def _from_cache(self, key: str, local: bytes, response: CachedResponse) -> tuple[Answer] | None:
        verified = self.shared.verify(key, response)
        if verified is not None:
            headers, remaining = verified
            try:
                answer = parse_answer(headers, "resolver")
            except MalformedAnswer:
                pass
            else:
                self.stats.shared_hits += 1
                self.local.put(local, answer, remaining)
                return (answer,)
        # An entry we cannot vouch for (tampered, moved to another key, or unreadable): drop it, ask again.
        self.stats.rejected_entries += 1
        logger.warning("a resolver cache entry failed verification and was discarded")
        try:
            self.shared.delete(key)
        except Exception as exc:
            self._backend_failed("deleting", exc)
        return None

    def _read_live(self, response: requests.Response) -> tuple[Answer, dict[str, str]]:
        """Check and parse a fresh resolver response; every surprise is a 503."""
        try:
            if response.status_code != 200:
                self._failed(f"the resolver answered HTTP {response.status_code}")
            try:
                first = next(response.iter_content(1024), b"")
            except requests.RequestException as exc:
                self._failed(f"reading the resolver answer failed: {type(exc).__name__}")
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
        self._backend_down_until = time.monotonic() + BACKEND_RETRY_AFTER
        logger.warning(
            "resolver cache backend failed while %s (%s); asking the resolver directly for %gs",
            action,
            type(exc).__name__,
            BACKEND_RETRY_AFTER,
        )
