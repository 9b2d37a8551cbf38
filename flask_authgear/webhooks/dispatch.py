"""One handler per event type, idempotency by event ``id``, a maximum age for events. No Flask here.

Every receiver verifies a delivery, then goes through :class:`WebhookHandlers`: the Flask dispatcher and the WSGI
endpoint are subclasses that call :meth:`~WebhookHandlers.dispatch`. The rules below live only here; how Authgear
delivers is told in :mod:`flask_authgear.webhooks.catalogue`. In short: a non-blocking event is sent once, and
never again.

* A non-blocking handler that fails (raises) loses its event for good.
  It is never silent: it is logged at ERROR with the event's type and id, counted in
  :attr:`WebhookHandlers.failures`, and answered with an error status so Authgear's log shows it too. A handler
  that must not lose an event records it durably first (a table, a queue) and does the work from there.
* A non-blocking event without a handler is acknowledged (200) and logged at INFO: the app chose not to handle
  that type (a hook subscribed to ``"*"`` receives every one). ``on("*")`` registers a handler for them all.
* A blocking event without a handler, or whose handler returns no answer, is refused with 501 and logged:
  Authgear then counts the hook as failed and aborts the operation. Silence is never read as consent.
* The same event, with the same ``id``, reaches the app more than once when several hook URLs of the project lead
  to it, or when a captured delivery is replayed. A non-blocking event whose ``id`` was already handled is
  acknowledged without calling the handler again. The ``id`` is claimed before the handler runs (so two
  concurrent deliveries do not both run it) and released when the handler fails, so that a later delivery of the
  same event can still run it.
* A handler may be ``async def``; it runs to completion before the delivery is answered (through
  ``app.ensure_sync`` in Flask, in a new event loop in plain WSGI). A handler that returns a coroutine without
  being ``async def`` itself has failed, like one that raises: its work never ran.
* A blocking handler that takes longer than ``sync_hook_timeout`` (Authgear's ``sync_hook_timeout_seconds``, 5 s
  unless the project sets another) is logged: Authgear has given up on it and aborted the operation.
* With ``max_age``, an event generated longer ago (or implausibly far ahead) is refused: Authgear sends each event
  as it happens, once, so an old one is a replay of a captured delivery. This does not protect against anyone who
  holds the secret; it only limits what a captured request is worth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from ..core.calls import check_callable, not_awaitable, run_sync
from ..core.lru import LRU
from ..errors import AuthgearError, ConfigurationError
from .answers import ACKNOWLEDGED, WebhookAnswer, answer_problem
from .catalogue import SYNC_HOOK_TIMEOUT, check_event_type
from .errors import StaleWebhookError, WebhookHandlerError, WebhookNotHandledError
from .event import WebhookEvent

if TYPE_CHECKING:
    import redis

__all__ = [
    "Handler",
    "HandlerOptions",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "RedisIdempotencyStore",
    "WebhookHandlers",
]

logger = logging.getLogger("flask_authgear")

#: A handler receives the verified event; a blocking event's handler returns the answer.
Handler = Callable[[WebhookEvent], "WebhookAnswer | None"]
H = TypeVar("H", bound=Handler)

_SYNC_REDIS = "RedisIdempotencyStore's client (it needs redis.Redis, not redis.asyncio.Redis)"

#: How long an event id is remembered by default: a replay of a captured delivery within a week is recognised.
_DEFAULT_IDEMPOTENCY_TTL = 7 * 24 * 3600.0


class IdempotencyStore(Protocol):
    """Remembers which event ids were handled. ``claim`` is atomic: only one caller gets True for an id.

    Both methods are plain functions: the dispatcher runs inside a request, without an event loop to await them.
    """

    def claim(self, event_id: str) -> bool:
        """True when ``event_id`` was not seen (it is now recorded), False for a duplicate."""
        ...

    def release(self, event_id: str) -> None:
        """Forget ``event_id``: its handler failed, so a later delivery of the same event may still run it."""
        ...


class MemoryIdempotencyStore:
    """Event ids of this process: bounded (least recently seen forgotten first) and expiring. Not shared between
    workers."""

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl: float = _DEFAULT_IDEMPOTENCY_TTL,
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
            forgotten_at = self._seen.get(event_id)
            if forgotten_at is not None and forgotten_at > now:  # seen, and not yet expired
                return False
            self._seen[event_id] = now + self.ttl
            return True

    def release(self, event_id: str) -> None:
        self._seen.pop(event_id)


class RedisIdempotencyStore:
    """Event ids shared by every worker through Redis: ``SET key 1 NX EX ttl`` claims atomically.

    Authgear sends an event with the same ``id`` to every hook configured for it: give each webhook URL its own
    ``prefix``, or the first URL to receive an event makes the others acknowledge it without handling it.
    """

    def __init__(
        self, client: redis.Redis, *, ttl: float = _DEFAULT_IDEMPOTENCY_TTL, prefix: str = "flask_authgear_webhook:"
    ) -> None:
        if ttl < 1:
            raise ConfigurationError("RedisIdempotencyStore needs ttl >= 1 second")
        self.client = client
        self.ttl = int(ttl)
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisIdempotencyStore:
        """A store on ``redis://host:port/db``, with short socket deadlines: a blocking hook has 5 s in all."""
        try:
            import redis as redis_module
        except ImportError:
            raise ConfigurationError(
                "RedisIdempotencyStore needs the redis package: pip install 'flask-authgear[redis]'"
            ) from None
        return cls(redis_module.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), **options)

    def claim(self, event_id: str) -> bool:
        # A redis.asyncio client answers with a coroutine, which bool() would read as "not seen" every time.
        return bool(not_awaitable(self.client.set(self.prefix + event_id, b"1", nx=True, ex=self.ttl), _SYNC_REDIS))

    def release(self, event_id: str) -> None:
        not_awaitable(self.client.delete(self.prefix + event_id), _SYNC_REDIS)


class HandlerOptions(TypedDict, total=False):
    """The options of :class:`WebhookHandlers`, taken as keywords by every webhook receiver built on it."""

    store: IdempotencyStore | None
    idempotency: bool
    max_age: float | None
    sync_hook_timeout: float
    clock: Callable[[], float]


class WebhookHandlers:
    """A handler per event type, and the rules that decide each delivery's answer.

    Args:
        store: where non-blocking event ids are remembered; default a :class:`MemoryIdempotencyStore`.
        idempotency: False calls the handler for every delivery, duplicates included.
        max_age: refuse events generated more than this many seconds ago (or ahead); None: no limit. Authgear
            sends each event as it happens, so a few times the clock skew between the two hosts is enough.
        sync_hook_timeout: the project's ``hook.sync_hook_timeout_seconds`` (Authgear's default, 5): a blocking
            handler slower than this is logged, since Authgear has given up on it.
        clock: the wall clock (unix seconds) for ``max_age`` and ``sync_hook_timeout``, injectable for tests.
    """

    def __init__(
        self,
        *,
        store: IdempotencyStore | None = None,
        idempotency: bool = True,
        max_age: float | None = None,
        sync_hook_timeout: float = SYNC_HOOK_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("max_age", max_age), ("sync_hook_timeout", sync_hook_timeout)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise ConfigurationError(f"{name} must be a number of seconds > 0")
        self._handlers: dict[str, Handler] = {}
        self.store: IdempotencyStore | None = (store or MemoryIdempotencyStore()) if idempotency else None
        self.max_age = max_age
        self.sync_hook_timeout = sync_hook_timeout
        self._clock = clock
        #: Non-blocking events whose handler failed, by type: each is lost unless the handler recorded it first.
        self.failures: Counter[str] = Counter()
        self._failures_lock = threading.Lock()

    def on(self, *event_types: str) -> Callable[[H], H]:
        """Register the decorated function for these event types: ``@hooks.on("user.created")``.

        Each must be a type Authgear sends (a misspelt one is refused with the nearest real type), or ``"*"``
        for every non-blocking event that has no handler of its own. A blocking event is never handled by
        ``"*"``: its answer is a decision, given by a handler written for it.
        """
        if not event_types or not all(isinstance(t, str) and t for t in event_types):
            raise ConfigurationError("on() needs one or more event type names")
        for event_type in event_types:
            if event_type != "*":  # a hook subscribed to "*" receives every non-blocking event
                check_event_type(event_type)

        def register(handler: H) -> H:
            self.check_handler(handler)
            for event_type in event_types:
                if event_type in self._handlers:
                    raise ConfigurationError(f"a handler for {event_type} is already registered")
                self._handlers[event_type] = handler
            return handler

        return register

    def dispatch(self, event: WebhookEvent) -> WebhookAnswer:
        """The answer to a verified event; failures are :class:`~flask_authgear.webhooks.WebhookError` subclasses.

        An event older than ``max_age`` is refused, and a blocking handler slower than ``sync_hook_timeout`` is
        logged. A non-blocking event's id is claimed first; when its handler raises, the event is lost: it is
        logged at ERROR, counted in :attr:`failures`, and its id released so that a later delivery of the same
        event can still run it.
        """
        handler = self._handlers.get(event.type)
        if handler is None and not event.is_blocking:
            handler = self._handlers.get("*")
        if handler is None:
            if not event.is_blocking:
                logger.info("no handler for the webhook event %s: acknowledged", _named(event))
                return ACKNOWLEDGED
            logger.error("no handler for the blocking webhook event %s: answering 501", _named(event))
            raise WebhookNotHandledError()
        now = self._clock()
        if self.max_age is not None and (
            event.timestamp is None or abs(now - event.timestamp.timestamp()) > self.max_age
        ):  # no timestamp, too old, or implausibly far ahead
            logger.warning("webhook event %s refused: older than max_age", _named(event))
            raise StaleWebhookError()
        store = None if event.is_blocking else self.store
        if store is not None:
            try:
                fresh = not_awaitable(store.claim(event.id), "the idempotency store's claim()")
            except Exception:
                self._lost(event, "the idempotency store failed", exc_info=True)
                raise WebhookHandlerError() from None
            if not fresh:
                logger.info("webhook event %s was already handled: acknowledged again", _named(event))
                return ACKNOWLEDGED
        handled = False
        try:
            # Called to completion: an unawaited coroutine is never taken for an answer.
            answer = not_awaitable(self.ensure_sync(handler)(event), "the webhook handler")
            handled = True
        except AuthgearError:
            if not event.is_blocking:
                self._lost(event, "its handler failed")
            raise
        except Exception:
            if not event.is_blocking:
                self._lost(event, "its handler failed", exc_info=True)
            else:
                logger.exception(
                    "the handler of the blocking webhook event %s failed: the operation aborts", _named(event)
                )
            raise WebhookHandlerError() from None
        finally:
            if not handled and store is not None:  # a later delivery of the lost event may still run the handler
                release: Callable[[str], object] = store.release  # typed None; an async one would not be
                try:
                    not_awaitable(release(event.id), "the idempotency store's release()")
                except Exception:
                    logger.exception("the webhook idempotency store failed to release event %s", event.id)
        if not event.is_blocking:
            return ACKNOWLEDGED
        if (elapsed := self._clock() - now) > self.sync_hook_timeout:
            limit = self.sync_hook_timeout
            logger.warning(
                "blocking webhook event %s took %.1f s: Authgear gives up after %g s", _named(event), elapsed, limit
            )
        return _checked(event, answer)

    def _lost(self, event: WebhookEvent, why: str, *, exc_info: bool = False) -> None:
        """A non-blocking event that was not handled: Authgear never sends it again, so it must be seen."""
        with self._failures_lock:
            self.failures[event.type] += 1
        logger.error(
            "webhook event %s was not handled: %s. Authgear does not send an event twice, so it is lost unless the"
            " handler recorded it first",
            _named(event),
            why,
            exc_info=exc_info,
        )

    def check_handler(self, handler: Any) -> None:
        """Refuse a handler that could never answer, when it is registered (see :mod:`~flask_authgear.core.calls`)."""
        check_callable(handler, "the webhook handler")

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as a plain function: an ``async def`` one runs to completion in a new event loop, as plain
        WSGI has none; the Flask adapter uses ``app.ensure_sync`` instead."""
        return run_sync(func)


def _checked(event: WebhookEvent, answer: object) -> WebhookAnswer:
    """``answer`` when Authgear accepts it for the blocking ``event``. No answer, or one built by hand that Authgear
    would refuse, is logged and answered 501, which aborts the operation as Authgear would, with the reason in the
    app's log."""
    if not isinstance(answer, WebhookAnswer) or answer == ACKNOWLEDGED:
        kind = type(answer).__name__
        logger.error(
            "the handler of the blocking webhook event %s returned %s, not allow() or deny()", event.type, kind
        )
        raise WebhookNotHandledError("The webhook handler gave no answer.")
    if problem := answer_problem(event.type, answer.to_dict()):
        logger.error("the answer to the blocking webhook event %s is one Authgear refuses: %s", event.type, problem)
        raise WebhookNotHandledError("The webhook handler's answer is not one Authgear accepts.")
    return answer


def _named(event: WebhookEvent) -> str:
    """An event as the log names it: ``user.created (id 0000000000000001)``; never its payload."""
    return f"{event.type} (id {event.id})"
