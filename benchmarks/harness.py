"""Timing: every case runs once per round, rounds interleave the cases, and the median round is reported.

Interleaving matters on a shared machine: a burst of noise lands on one round of every case rather than on
every round of one case, so the medians (and the ratios between them) stay comparable. CPU-bound cases are
timed on the measuring thread's CPU clock, so time spent descheduled by other processes is not counted;
cases that wait on the network are timed on the wall clock.
"""

from __future__ import annotations

import gc
import io
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from werkzeug.test import EnvironBuilder

#: One timed batch: makes some calls and returns how many.
Batch = Callable[[], int]


@dataclass
class Case:
    """A measured thing: ``batch`` is timed, ``before_round`` (untimed) resets state such as a cache."""

    name: str
    batch: Batch
    before_round: Callable[[], None] | None = None
    #: ``time.thread_time`` for CPU-bound work, ``time.perf_counter`` for work that waits on a socket.
    clock: Callable[[], float] = time.thread_time
    #: A baseline timed right before each batch of this case (the bare request), for paired differences.
    baseline: Case | None = None
    samples: list[float] = field(default_factory=list)  # seconds per call, one per round
    baseline_samples: list[float] = field(default_factory=list)  # the baseline's, timed just before

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def median_overhead(self) -> float:
        """Median over rounds of (this case - its baseline timed just before): robust to slow drifts."""
        return statistics.median(s - b for s, b in zip(self.samples, self.baseline_samples, strict=True))


def run_rounds(cases: Sequence[Case], rounds: int, *, warmup: bool = True) -> None:
    """Time every case ``rounds`` times, interleaved; the garbage collector is paused inside a batch."""
    if warmup:
        for case in cases:
            if case.before_round is not None:
                case.before_round()
            case.batch()
    for _ in range(rounds):
        for case in cases:
            if case.baseline is not None:
                case.baseline_samples.append(_time(case.baseline))
            if case.before_round is not None:
                case.before_round()
            case.samples.append(_time(case))


def _time(case: Case) -> float:
    """Seconds per call of one batch of ``case``, with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        clock = case.clock
        start = clock()
        calls = case.batch()
        elapsed = clock() - start
    finally:
        gc.enable()
    return elapsed / calls


def environ(path: str, authorization: str | None = None, **headers: str) -> dict[str, Any]:
    """A WSGI environ for ``GET path`` on 127.0.0.1, built once and copied per call."""
    all_headers = dict(headers)
    if authorization is not None:
        all_headers["Authorization"] = authorization
    built = EnvironBuilder(path=path, headers=all_headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
    built["wsgi.input"] = io.BytesIO(b"")
    return built


class WSGICaller:
    """Direct WSGI calls: no server, no socket; the response body is read and closed as a server would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = ""

    def _start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        return None

    def call(self, env: dict[str, Any]) -> bytes:
        result = self.app(dict(env), self._start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def batch(self, environs: Sequence[dict[str, Any]]) -> Batch:
        """A batch that sends each environ once, in order."""
        app, start_response = self.app, self._start_response

        def run() -> int:
            for env in environs:
                result = app(dict(env), start_response)
                for _ in result:
                    pass
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            return len(environs)

        return run

    def check(self, env: dict[str, Any], expected_status: str = "200 OK", contains: bytes = b"") -> None:
        """Fail loudly before timing when an app does not answer as the benchmark assumes."""
        body = self.call(env)
        if self.status != expected_status or contains not in body:
            raise RuntimeError(f"benchmark app answered {self.status} {body[:200]!r}, expected {expected_status}")


def repeat_batch(func: Callable[[], Any], calls: int) -> Batch:
    """A batch that calls ``func`` ``calls`` times."""

    def run() -> int:
        for _ in range(calls):
            func()
        return calls

    return run


def each_batch(func: Callable[[Any], Any], items: Iterable[Any]) -> Batch:
    """A batch that calls ``func(item)`` once per item."""
    items = list(items)

    def run() -> int:
        for item in items:
            func(item)
        return len(items)

    return run
