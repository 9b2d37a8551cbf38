"""Caching resolver answers without ever keying, storing or serving them unsafely.

Two levels, both keyed by exactly the credentials forwarded to the resolver (``Authorization`` and ``Cookie``):

* The in-process level (in :class:`~flask_authgear.core.resolver.ResolverClient`): an :class:`LRU` of parsed
  answers, keyed by a BLAKE2b digest of the (Authorization, Cookie) pair (:func:`local_key`), so a repeated
  request costs one hash and one lookup, and an entry's size does not depend on the credentials'. It never
  leaves the process.
* The shared level, when ``cache`` names one: a requests-cache store on sqlite (the workers of a host) or Redis
  (every worker and host behind it); with ``cache="memory"`` the in-process level is the whole cache. It can
  leave the process (a sqlite file, a Redis dump), so it is keyed by an HMAC-SHA256, under ``cache_secret``,
  of the credentials (length-prefixed so no two pairs encode alike) and of the resolver asked: raw credentials
  are never a key there and never stored.

requests-cache's defaults are unsafe for credentials (``Authorization`` is redacted before keying, so two
users share one entry; cookies are stored raw; entries never expire; ``stale_if_error`` serves revoked
sessions). So here no request goes through requests-cache: an entry is read and written by our own key; we
write a response we build from the parsed answer alone (its ``X-Authgear-*`` headers, no body, a request with no
headers, no cookies), with the time the resolver answered, an explicit store expiry, and a MAC over key,
answer and answer time so that an entry copied to another key or edited in a shared store is refused.
Each reader measures an entry's age against its own TTL (processes sharing a store may be configured
differently), and failures are never cached. An entry that is not in our form at all (valid JSON with a wrongly
typed field, say) is a miss like a refused one: deleted and replaced, never taken for a store that is down.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from requests.structures import CaseInsensitiveDict
from requests_cache.backends.base import BaseCache
from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.models.request import CachedRequest
from requests_cache.models.response import CachedResponse
from requests_cache.serializers import Stage, json_serializer
from requests_cache.serializers.preconf import json_preconf_stage

from ..config import Settings
from ..errors import ConfigurationError
from . import json
from .headers import Answer, answer_headers, parse_answer

__all__ = ["CredentialKeyer", "MalformedEntry", "SharedCache", "local_key"]

logger = logging.getLogger("flask_authgear")

#: A stored entry keeps the answer's ``X-Authgear-*`` headers and these two of our own.
_MAC_HEADER = "Flask-Authgear-Mac"
_ANSWERED_HEADER = "Flask-Authgear-Answered-At"
#: Namespace of the entries in a shared store (Redis key prefix).
_NAMESPACE = "flask_authgear_resolver"
#: How often expired entries are purged from a sqlite store.
_PURGE_INTERVAL = 60.0
#: Deadline of each Redis operation, in seconds (capped by ``http_timeout``).
_REDIS_TIMEOUT = 1.0


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
    against it offline; the secret must be shared by every process that shares the store.
    """

    def __init__(self, secret: bytes, target: str) -> None:
        self._secret = secret
        self._prefix = f"flask-authgear/resolver/v1|{_encode(target)}|"

    def _digest(self, message: str) -> str:
        return hmac.new(self._secret, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def key(self, authorization: str | None, cookie: str | None) -> str:
        return self._digest(f"{self._prefix}{_encode(authorization)}|{_encode(cookie)}")

    def mac(self, key: str, headers: Mapping[str, str], answered_at: str) -> str:
        """Authenticates a stored entry: its key, its answer headers (lowercase names) and when it was answered."""
        items = [key, answered_at, *(f"{name}:{headers[name]}" for name in sorted(headers))]
        return self._digest("flask-authgear/entry/v2|" + "|".join(_encode(item) for item in items))


class MalformedEntry(Exception):
    """A stored entry that is not an entry in our form (say, valid JSON with a wrongly typed field, as another
    version of requests-cache could write during a rolling upgrade). It is a miss, never an outage: the store
    itself answered."""


def _read_entry(value: str | bytes) -> CachedResponse:
    """Read a stored entry strictly: one that does not read back as an entry of ours raises
    :class:`MalformedEntry`, where requests-cache would read it as absent or let it fail later, so that the
    reader can tell it from a store that is down, count it and replace it."""
    try:
        response: CachedResponse = json_preconf_stage.loads(json.loads_object(value))
        well_formed = (
            isinstance(response, CachedResponse)
            and type(response.status_code) is int
            and isinstance(response.expires, datetime | None)
            and all(type(name) is str and type(item) is str for name, item in response.headers.items())
        )
    except Exception as exc:  # whatever the structuring step raises for a field it cannot read
        raise MalformedEntry(type(exc).__name__) from None
    if not well_formed:
        raise MalformedEntry("a field has the wrong type")
    return response


#: How entries are written and read: requests-cache's JSON format, read by :func:`_read_entry`.
_ENTRY_FORMAT = Stage(dumps=json_serializer.dumps, loads=_read_entry)


def _cache_secret(settings: Settings) -> bytes:
    """The configured secret, or a random one for this process (then a shared store is not shared)."""
    if settings.cache_secret is not None:
        return settings.cache_secret.encode("utf-8")
    logger.warning(
        "cache=%s without cache_secret: this process keys entries with a random secret, so no other "
        "process can use them; set the same cache_secret on every worker",
        settings.cache.split(":", 1)[0],
    )
    return secrets.token_bytes(32)


def _build_backend(settings: Settings) -> BaseCache:
    """The requests-cache backend for ``settings.cache``; a readable error at start-up when it cannot work."""
    spec = settings.cache
    if spec.startswith("sqlite:///"):
        path = spec[len("sqlite:///") :]
        if not path:
            raise ConfigurationError(f"{settings.label('cache')}='sqlite:///path' needs a file path")
        try:
            return SQLiteCache(path, serializer=_ENTRY_FORMAT, wal=True, busy_timeout=int(settings.http_timeout * 1000))
        except Exception as exc:
            raise ConfigurationError(
                f"{settings.label('cache')}: cannot open the sqlite file {path!r}: {type(exc).__name__}"
            ) from None
    # redis://, rediss:// and unix:// URLs
    try:
        from redis import Redis
        from requests_cache.backends.redis import RedisCache
    except ImportError:
        raise ConfigurationError(
            f"{settings.label('cache')}=redis:// needs the redis package: pip install 'flask-authgear[redis]'"
        ) from None
    # A cache lookup slower than this is worse than asking the resolver, which is what happens on a timeout.
    timeout = min(settings.http_timeout, _REDIS_TIMEOUT)
    try:
        connection = Redis.from_url(spec, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError:
        raise ConfigurationError(
            f"{settings.label('cache')} must be a valid redis URL such as redis://localhost:6379/0"
        ) from None
    # ttl_offset=1: Redis deletes each entry a second after it expires (requests-cache's default keeps it
    # an hour for revalidation, which we never do). It also keeps a sub-second TTL from meaning "forever".
    return RedisCache(namespace=_NAMESPACE, connection=connection, serializer=_ENTRY_FORMAT, ttl=True, ttl_offset=1)


class SharedCache:
    """The shared level: :meth:`get` and :meth:`put` the answer for some credentials, stored under their
    :class:`CredentialKeyer` key; requests-cache is the store underneath and stays in this module.

    An entry records when the resolver answered (``clock``, wall time, so that every host reads it alike);
    each reader decides from that age and its own TTL whether the answer is still good enough for it.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.url = settings.resolver_url
        #: Keys entries by the credentials and by the resolver asked: its URL and the host it is asked for.
        self.keyer = CredentialKeyer(_cache_secret(settings), f"{self.url}\n{settings.authgear_host}")
        self._clock = clock
        self.kind = "sqlite" if settings.cache.startswith("sqlite:") else "redis"
        #: The requests-cache store, read and written by our key only: nothing is ever sent through it.
        self.backend: BaseCache = _build_backend(settings)
        #: Entries not in our form at all, and entries in our form that we cannot vouch for (see :meth:`get`).
        self.malformed_entries = 0
        self.rejected_entries = 0
        self._last_purge = clock()

    def get(self, authorization: str | None, cookie: str | None) -> tuple[Answer, float] | None:
        """The answer stored for these credentials and its age in seconds, or None: the store has none (or has dropped
        it at its store expiry), or holds one we will not use, which is deleted so that the resolver's answer
        takes its place.

        Raises the store's own error when it cannot be read. The age is negative when the writer's clock runs
        ahead of ours; the caller decides what it accepts.
        """
        key = self.keyer.key(authorization, cookie)
        try:
            response = self.backend.get_response(key)
        except MalformedEntry:
            self.malformed_entries += 1
            self._discard(key, "was malformed")
            return None
        if response is None or response.is_expired:
            return None
        entry = self._verified(key, response)
        if entry is None:
            self.rejected_entries += 1
            self._discard(key, "failed verification")
            return None
        answer, answered_at = entry
        return answer, self._clock() - answered_at

    def _verified(self, key: str, response: CachedResponse) -> tuple[Answer, float] | None:
        """The entry's answer and when it was answered, or None when its MAC fails (tampered, or copied from
        another key) or it holds an answer Authgear never gives."""
        headers = response.headers
        answered_text = headers.get(_ANSWERED_HEADER, "")
        stored = answer_headers(headers)
        mac = self.keyer.mac(key, stored, answered_text)
        if response.status_code != 200 or not hmac.compare_digest(headers.get(_MAC_HEADER, ""), mac):
            return None
        try:
            return parse_answer(stored, "resolver"), float(answered_text)
        except ValueError:  # an answer Authgear never gives (MalformedAnswer), or an unreadable time
            return None

    def _discard(self, key: str, why: str) -> None:
        logger.warning("a resolver cache entry %s and was discarded", why)
        self.backend.delete(key)

    def put(self, authorization: str | None, cookie: str | None, answer: Mapping[str, str], ttl: float) -> None:
        """Write one answer: its ``X-Authgear-*`` headers, when it was answered and a MAC; no request data at all.

        The store drops the entry after this writer's ``ttl``; readers may stop using it sooner.
        """
        key = self.keyer.key(authorization, cookie)
        answered_at = self._clock()
        answered_text = repr(answered_at)
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(answer)
        headers[_ANSWERED_HEADER] = answered_text
        headers[_MAC_HEADER] = self.keyer.mac(key, answer, answered_text)
        created = datetime.fromtimestamp(answered_at, tz=timezone.utc)
        expires = created + timedelta(seconds=ttl)
        # requests-cache stores a URL with each entry: the resolver's, never anything of a request.
        entry = CachedResponse(
            headers=headers,
            status_code=200,
            url=self.url,
            request=CachedRequest(url=self.url),
            expires=expires,
            created_at=created,
        )
        self.backend.save_response(entry, key, expires)
        self._maybe_purge()

    def _maybe_purge(self) -> None:
        """Drop expired entries now and then, so a sqlite file does not grow with old answers (Redis expires its
        keys itself)."""
        if not isinstance(self.backend, SQLiteCache) or self._clock() - self._last_purge < _PURGE_INTERVAL:
            return
        self._last_purge = self._clock()  # at once, so that the writers that follow skip the purge
        try:
            self.backend.delete(expired=True, vacuum=False)
        except Exception as exc:
            logger.warning("purging expired resolver cache entries failed: %s", type(exc).__name__)

    def close(self) -> None:
        self.backend.close()  # type: ignore[no-untyped-call]
