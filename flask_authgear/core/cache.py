"""Caching resolver answers without ever keying, storing or serving them unsafely.

Two levels, both keyed by exactly the credentials forwarded to the resolver (``Authorization`` and ``Cookie``):

* :class:`LocalCache`: a bounded in-process LRU of parsed answers, keyed by a BLAKE2b digest of the
  (Authorization, Cookie) pair (:func:`local_key`), so a repeated request costs one hash and one dictionary
  lookup, and an entry's size does not depend on the credentials'. It never leaves the process.
* The shared level: a requests-cache ``CachedSession`` on the configured backend (memory, sqlite or Redis),
  so every worker and host behind one Redis sees one cache. It can leave the process (a sqlite file, a Redis
  dump), so it is keyed by an HMAC-SHA256, under ``cache_secret``, of the credentials (length-prefixed so no
  two pairs encode alike) and of the resolver asked: raw credentials are never a key there and never stored.

requests-cache's defaults are unsafe for credentials (``Authorization`` is redacted before keying, so two
users share one entry; cookies are stored raw; entries never expire; ``stale_if_error`` serves revoked
sessions). So here: our own ``key_fn``; the session never writes by itself (``read_only``); we write a
response we build from the parsed answer alone (its ``X-Authgear-*`` headers, no body, a request with no
headers, no cookies), with an explicit expiry chosen by the kind of answer, and a MAC over key, answer and
expiry so that an entry copied to another key or edited in a shared store is refused. Nothing is served
past its expiry, and failures are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from requests.structures import CaseInsensitiveDict
from requests_cache.backends.base import BaseCache, DictStorage
from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.models.request import CachedRequest
from requests_cache.models.response import CachedResponse
from requests_cache.session import CachedSession

from ..config import Settings
from ..errors import ConfigurationError

logger = logging.getLogger("flask_authgear")

V = TypeVar("V")

#: The only response headers a stored entry keeps, besides our own two below.
ANSWER_PREFIX = "x-authgear-"
MAC_HEADER = "Flask-Authgear-Mac"
EXPIRES_HEADER = "Flask-Authgear-Expires"
#: Namespace of the entries in a shared store (Redis key prefix).
NAMESPACE = "flask_authgear_resolver"
#: How often expired entries are purged from a memory or sqlite store (Redis expires its keys itself).
PURGE_INTERVAL = 60.0
#: Deadline of each Redis operation, in seconds (capped by ``http_timeout``).
REDIS_TIMEOUT = 1.0
#: Smallest bound of the in-memory shared store.
MIN_MEMORY_ENTRIES = 1000


def _encode(value: str | None) -> str:
    """Length-prefixed, so that no two (Authorization, Cookie) pairs give the same message; None differs from ""."""
    return "-" if value is None else f"{len(value)}:{value}"


def local_key(authorization: str | None, cookie: str | None) -> bytes:
    """The in-process level's key: a BLAKE2b-256 digest of exactly the forwarded (Authorization, Cookie) pair.

    A digest rather than the pair, so an entry's key takes 32 bytes whatever the credentials' size (refused
    junk is cached too, as "not authenticated"); unkeyed, because it never leaves the process and only
    collisions matter; one pass in C, cheaper than the shared level's HMAC.
    """
    message = f"{_encode(authorization)}|{_encode(cookie)}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(message, digest_size=32).digest()


class CredentialKeyer:
    """Turns forwarded credentials into a cache key: ``HMAC-SHA256(secret, target, Authorization, Cookie)``.

    Keyed, so that a leaked store (a sqlite file, a Redis dump) does not let anyone test guessed tokens
    against it offline; the secret must be shared by every process that shares the store. The HMAC's inner
    and outer hash states are computed once, which halves the cost of a key on the hot path.
    """

    def __init__(self, secret: bytes, target: str) -> None:
        self._secret = secret
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(secret).digest() if len(secret) > block else secret).ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        self._prefix = f"flask-authgear/resolver/v1|{_encode(target)}|"

    def _hmac(self, message: str) -> str:
        inner = self._inner.copy()
        inner.update(message.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def key(self, authorization: str | None, cookie: str | None) -> str:
        return self._hmac(f"{self._prefix}{_encode(authorization)}|{_encode(cookie)}")

    def mac(self, key: str, headers: Mapping[str, str], expires: str) -> str:
        """Authenticates a stored entry: its key, its answer headers (lowercase names) and its expiry."""
        items = [key, expires, *(f"{name}:{headers[name]}" for name in sorted(headers))]
        return self._hmac("flask-authgear/entry/v1|" + "|".join(_encode(item) for item in items))


class LocalCache(Generic[V]):
    """A bounded, thread-safe LRU whose entries carry their own expiry (monotonic clock).

    Reads take no lock; writes and evictions do. An entry past its expiry is never returned.
    """

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[V] | None:
        """``(value,)`` while fresh, else None (a 1-tuple, so a cached ``None`` differs from a miss)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._clock() >= expires:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        try:  # noqa: SIM105 - contextlib.suppress costs more on this hot path
            self._entries.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile
            pass
        return (value,)

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if self.size <= 0 or ttl <= 0:
            return
        expires = self._clock() + ttl
        with self._lock:
            self._entries[key] = (value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class BoundedDictStorage(DictStorage):
    """requests-cache's in-memory storage with a bound: the oldest entries go first."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.data: OrderedDict[str, Any] = OrderedDict()
        self.max_entries = max_entries
        self._lock = threading.Lock()

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.max_entries:
                self.data.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self.data[key]

    def purge_expired(self) -> int:
        """Drop every expired entry; returns how many."""
        with self._lock:
            expired = [k for k, v in self.data.items() if getattr(v, "is_expired", True)]
            for k in expired:
                del self.data[k]
        return len(expired)


def cache_secret(settings: Settings) -> bytes:
    """The configured secret, or a random one for this process (then a shared store is not shared)."""
    if settings.cache_secret is not None:
        return settings.cache_secret.encode("utf-8")
    if settings.cache != "memory":
        logger.warning(
            "cache=%s without cache_secret: this process keys entries with a random secret, so no other "
            "process can use them; set the same cache_secret on every worker",
            settings.cache.split(":", 1)[0],
        )
    return secrets.token_bytes(32)


def build_backend(settings: Settings) -> BaseCache:
    """The requests-cache backend for ``settings.cache``; a readable error at start-up when it cannot work."""
    spec = settings.cache
    if spec == "memory":
        backend = BaseCache(cache_name=NAMESPACE)
        backend.responses = BoundedDictStorage(max(settings.resolver_local_cache_size, MIN_MEMORY_ENTRIES))
        return backend
    if spec.startswith("sqlite:///"):
        path = spec[len("sqlite:///") :]
        if not path:
            raise ConfigurationError("cache='sqlite:///path' needs a file path")
        try:
            return SQLiteCache(path, serializer="json", wal=True, busy_timeout=int(settings.http_timeout * 1000))
        except Exception as exc:
            raise ConfigurationError(f"cache: cannot open the sqlite file {path!r}: {type(exc).__name__}") from None
    # redis://, rediss:// and unix:// URLs
    try:
        from redis import Redis
        from requests_cache.backends.redis import RedisCache
    except ImportError:
        raise ConfigurationError(
            "cache=redis:// needs the redis package: pip install 'flask-authgear[redis]'"
        ) from None
    # A cache lookup slower than this is worse than asking the resolver, which is what happens on a timeout.
    timeout = min(settings.http_timeout, REDIS_TIMEOUT)
    try:
        connection = Redis.from_url(spec, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError:
        raise ConfigurationError("cache must be a valid redis URL such as redis://localhost:6379/0") from None
    # ttl_offset=1: Redis deletes each entry a second after it expires (requests-cache's default keeps it
    # an hour for revalidation, which we never do). It also keeps a sub-second TTL from meaning "forever".
    return RedisCache(namespace=NAMESPACE, connection=connection, serializer="json", ttl=True, ttl_offset=1)


class SharedCache:
    """The requests-cache level: a ``CachedSession`` that reads by our key and never writes by itself."""

    def __init__(self, settings: Settings, keyer: CredentialKeyer) -> None:
        self.keyer = keyer
        self.url = settings.resolver_url
        spec = settings.cache
        self.kind = "memory" if spec == "memory" else "sqlite" if spec.startswith("sqlite:") else "redis"
        self.session = CachedSession(
            backend=build_backend(settings),
            key_fn=self._key_fn,
            expire_after=settings.resolver_cache_ttl,
            allowable_codes=(200,),
            allowable_methods=("GET",),
            ignored_parameters=("Authorization", "Cookie"),
            cache_control=False,  # the resolver's headers never extend a lifetime
            always_revalidate=False,
            stale_if_error=False,
            stale_while_revalidate=False,
            read_only=True,  # writes go through store(), with an expiry chosen per answer
        )
        self._purge_lock = threading.Lock()
        self._last_purge = time.monotonic()

    def _key_fn(self, request: Any, **_: Any) -> str:
        headers = request.headers
        return self.keyer.key(headers.get("Authorization"), headers.get("Cookie"))

    def verify(self, key: str, response: CachedResponse) -> tuple[dict[str, str], float] | None:
        """The stored answer headers and seconds left, or None when the entry is expired or not ours."""
        headers = response.headers
        mac = headers.get(MAC_HEADER)
        expires_text = headers.get(EXPIRES_HEADER)
        if response.status_code != 200 or not mac or not expires_text:
            return None
        answer = {k.lower(): v for k, v in headers.items() if k.lower().startswith(ANSWER_PREFIX)}
        if not hmac.compare_digest(mac, self.keyer.mac(key, answer, expires_text)):
            return None
        try:
            remaining = float(expires_text) - time.time()
        except ValueError:
            return None
        if remaining <= 0 or response.is_expired:
            return None
        return answer, remaining

    def store(self, key: str, answer: Mapping[str, str], ttl: float) -> None:
        """Write one answer: only its ``X-Authgear-*`` headers, an expiry and a MAC; no request data at all."""
        expires_at = time.time() + ttl
        expires_text = repr(expires_at)
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(answer)
        headers[EXPIRES_HEADER] = expires_text
        headers[MAC_HEADER] = self.keyer.mac(key, answer, expires_text)
        expires = datetime.fromtimestamp(expires_at, tz=timezone.utc)
        entry = CachedResponse(
            content=b"",
            headers=headers,
            status_code=200,
            reason="OK",
            url=self.url,
            request=CachedRequest(method="GET", url=self.url, headers=CaseInsensitiveDict(), body=b""),
            expires=expires,
            created_at=expires - timedelta(seconds=ttl),
        )
        self.session.cache.save_response(entry, key, expires)
        self._maybe_purge()

    def delete(self, key: str) -> None:
        self.session.cache.delete(key)

    def _maybe_purge(self) -> None:
        """Drop expired entries now and then, so a memory or sqlite store does not grow with old answers."""
        if self.kind == "redis" or time.monotonic() - self._last_purge < PURGE_INTERVAL:
            return
        if not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._last_purge = time.monotonic()
            cache = self.session.cache
            if isinstance(cache, SQLiteCache):
                cache.delete(expired=True, vacuum=False)
            elif isinstance(cache.responses, BoundedDictStorage):
                cache.responses.purge_expired()
        except Exception as exc:
            logger.warning("purging expired resolver cache entries failed: %s", type(exc).__name__)
        finally:
            self._purge_lock.release()

    def keys(self) -> Iterator[str]:
        yield from self.session.cache.responses.keys()

    def close(self) -> None:
        self.session.close()  # type: ignore[no-untyped-call]
