"""Run the same work in several threads released at one moment, for tests of what concurrent requests share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def together(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(0)`` to ``work(count - 1)``, each in its own thread, all started behind one barrier.

    Returns their results in that order once every thread has finished; an exception raised in a thread is
    raised here (the first one in that order), so a failed assertion inside ``work`` fails the test.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
