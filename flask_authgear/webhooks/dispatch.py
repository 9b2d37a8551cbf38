"""One handler per event type, idempotency by event ``id``, a maximum age for blocking events. No Flask here.

Every receiver verifies a delivery, then goes through :class:`WebhookHandlers`: the Flask dispatcher and the WSGI
endpoint are subclasses that call :meth:`~WebhookHandlers.dispatch`, and ``@require_webhook`` calls
:meth:`~WebhookHandlers.run` around its view. The rules below live only here.

* A non-blocking event without a handler is acknowledged (200): Authgear retries every non-2xx delivery,
  so refusing an event the app does not care about would make it retry for nothing.
* A blocking event without a handler, or whose handler returns no answer, is refused with 501 and logged:
  Authgear then counts the hook as failed and aborts the operation. Silence is never read as consent.
* A non-blocking event whose ``id`` was already seen is acknowledged without calling the handler again.
  The ``id`` is claimed before the handler runs (so two concurrent deliveries do not both run it) and
  released when the handler fails (so Authgear's retry runs it again).
* A blocking handler that takes longer than Authgear's 5 s budget is logged: Authgear has given up on it.
* With ``max_age``, a blocking event generated longer ago is refused: Authgear delivers blocking events at
  once (5 s budget per hook), so an old one is a replay of a captured delivery. This does not protect against
  anyone who holds the secret; it only limits what a captured request is worth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..core.lru import LRU
from ..errors import AuthgearError, ConfigurationError
from .answers import ACKNOWLEDGED, WebhookAnswer, answer_problem
from .errors import StaleWebhookError, WebhookHandlerError, WebhookNotHandledError
from .event import WebhookEvent

if TYPE_CHECKING:
    import redis

__all__ = [
    "Handler",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "RedisIdempotencyStore",
    "WebhookHandlers",
]

logger = logging.getLogger("flask_authgear")

#: A handler receives the verified event; a blocking event's handler returns the answer.
Handler = Callable[[WebhookEvent], "WebhookAnswer | None"]
H = TypeVar("H", bound=Handler)
T = TypeVar("T")

#: Seconds Authgear waits for each blocking hook before it counts the hook as failed.
BLOCKING_BUDGET = 5

#: How long an event id is remembered by default: longer than Authgear keeps retrying a delivery.
DEFAULT_IDEMPOTENCY_TTL = 7 * 24 * 3600.0


class IdempotencyStore(Protocol):
    """Remembers which event ids were handled. ``claim`` is atomic: only one caller gets True for an id."""

    def claim(self, event_id: str) -> bool:
        """True when ``event_id`` was not seen (it is now recorded), False for a duplicate."""
        ...

    def release(self, event_id: str) -> None:
        """Forget ``event_id``, because its handler failed and a retry must run it again."""
        ...


class MemoryIdempotencyStore:
    """Event ids of this process: bounded (least recently seen forgotten first) and expiring. Not shared between
    workers."""

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ConfigurationError("MemoryIdempotencyStore needs max_entries >= 1 and ttl > 0")
        self.ttl = ttl
        self._clock = clock
        self._seen: LRU[str, float] = LRU(max_entries)  # event id -> when it is forgotten
        self._lock = threading.Lock()  # a claim reads then writes: the lock makes the pair atomic

    def claim(self, event_id: str) -> bool:
        now = self._clock()
        with self._lock:
            if self._seen.get(event_id, now) > now:  # seen, and not yet expired
                return False
            self._seen[event_id] = now + self.ttl
            return True

    def release(self, event_id: str) -> None:
        self._seen.pop(event_id, None)


class RedisIdempotencyStore:
    """Event ids shared by every worker through Redis: ``SET key 1 NX EX ttl`` claims atomically.

    Authgear sends an event with the same ``id`` to every hook configured for it: give each webhook URL its own
    ``prefix``, or the first URL to receive an event makes the others acknowledge it without handling it.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        prefix: str = "flask_authgear_webhook:",
    ) -> None:
        if ttl < 1:
            raise ConfigurationError("RedisIdempotencyStore needs ttl >= 1 second")
        self.client = client
        self.ttl = int(ttl)
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisIdempotencyStore:
        """A store on ``redis://host:port/db``, with short socket deadlines (Authgear waits 60 s at most)."""
        import redis as redis_module

        return cls(redis_module.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), **options)

    def claim(self, event_id: str) -> bool:
        return bool(self.client.set(self.prefix + event_id, b"1", nx=True, ex=self.ttl))

    def release(self, event_id: str) -> None:
        self.client.delete(self.prefix + event_id)


class WebhookHandlers:
    """A handler per event type, and the rules that decide each delivery's answer.

    Args:
        store: where non-blocking event ids are remembered; default a :class:`MemoryIdempotencyStore`.
        idempotency: False calls the handler for every delivery, duplicates included.
        max_age: refuse blocking events generated more than this many seconds ago (or ahead); None: no limit.
        clock: the wall clock (unix seconds) for ``max_age`` and the 5 s budget, injectable for tests.
    """

    def __init__(
        self,
        *,
        store: IdempotencyStore | None = None,
        idempotency: bool = True,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0):
            raise ConfigurationError("max_age must be a number of seconds > 0, or None")
        self._handlers: dict[str, Handler] = {}
        self.store: IdempotencyStore | None = (store or MemoryIdempotencyStore()) if idempotency else None
        self.max_age = max_age
        self._clock = clock

    def on(self, *event_types: str) -> Callable[[H], H]:
        """Register the decorated function for these event types: ``@hooks.on("user.created")``."""
        if not event_types or not all(isinstance(t, str) and t for t in event_types):
            raise ConfigurationError("on() needs one or more event type names")

        def register(handler: H) -> H:
            for event_type in event_types:
                if event_type in self._handlers:
                    raise ConfigurationError(f"a handler for {event_type} is already registered")
                self._handlers[event_type] = handler
            return handler

        return register

    def dispatch(self, event: WebhookEvent) -> WebhookAnswer:
        """The answer to a verified event; failures are :class:`~flask_authgear.webhooks.WebhookError` subclasses."""
        handler = self._handlers.get(event.type)
        if handler is None:
            if not event.is_blocking:
                return ACKNOWLEDGED
            logger.error("no handler for the blocking webhook event %s: answering 501", event.type)
            raise WebhookNotHandledError()

        def call() -> WebhookAnswer | None:
            try:
                return self.call(handler, event)
            except AuthgearError:
                raise
            except Exception:
                logger.exception("the handler of the webhook event %s failed", event.type)
                raise WebhookHandlerError() from None

        answer = self.run(event, call)
        if not event.is_blocking:
            return ACKNOWLEDGED
        if not isinstance(answer, WebhookAnswer) or answer == ACKNOWLEDGED:
            logger.error(
                "the handler of the blocking webhook event %s returned %s instead of allow() or deny()",
                event.type,
                type(answer).__name__,
            )
            raise WebhookNotHandledError("The webhook handler gave no answer.")
        return acceptable(event, answer)

    def run(
        self, event: WebhookEvent, call: Callable[[], T], handled: Callable[[T], bool] = lambda _: True
    ) -> T | None:
        """``call()`` for ``event`` under the rules: None for a duplicate, acknowledged without calling it.

        A blocking event is refused when older than ``max_age`` and logged when ``call`` overruns the 5 s budget.
        A non-blocking event's id is claimed first, and released when ``call`` raises or ``handled(result)`` is
        false, so Authgear's retry runs it again.
        """
        if event.is_blocking:
            now = self._clock()
            if self.max_age is not None and (
                event.timestamp is None or abs(now - event.timestamp.timestamp()) > self.max_age
            ):  # no timestamp, too old, or implausibly far ahead
                raise StaleWebhookError()
            result = call()
            if (elapsed := self._clock() - now) > BLOCKING_BUDGET:
                logger.warning(
                    "the handler of the blocking webhook event %s took %.1f s: Authgear gives up after %d s",
                    event.type,
                    elapsed,
                    BLOCKING_BUDGET,
                )
            return result
        store = self.store
        if store is None:
            return call()
        try:
            fresh = store.claim(event.id)
        except Exception:
            logger.exception("the webhook idempotency store failed")
            raise WebhookHandlerError() from None
        if not fresh:
            logger.info("webhook event %s was already handled: acknowledged again", event.type)
            return None
        done = False
        try:
            result = call()
            done = handled(result)
            return result
        finally:
            if not done:
                try:
                    store.release(event.id)
                except Exception:
                    logger.exception("the webhook idempotency store failed to release an event")

    def call(self, handler: Handler, event: WebhookEvent) -> WebhookAnswer | None:
        """Call ``handler``; an adapter may override this (Flask runs async handlers through ``ensure_sync``)."""
        return handler(event)


def acceptable(event: WebhookEvent, answer: WebhookAnswer) -> WebhookAnswer:
    """``answer`` when Authgear accepts it for ``event``; one built by hand that it would refuse is logged and
    answered 501, which aborts the operation as Authgear would, with the reason in the app's log."""
    problem = answer_problem(event.type, answer.to_dict())
    if problem is not None:
        logger.error("the answer to the blocking webhook event %s is one Authgear refuses: %s", event.type, problem)
        raise WebhookNotHandledError("The webhook handler's answer is not one Authgear accepts.")
    return answer
