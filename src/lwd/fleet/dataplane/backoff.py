"""Riding out broker / network outages: bounded exponential backoff with jitter, one warning per outage.

Every fleet component that talks to the broker (Redis event log, task claims, registry index) or a
remote store retries *transient* errors (:func:`is_transient`: connection refused or reset, timeouts,
a Redis still loading its AOF) instead of dying, so a broker restart or a network outage of any
length costs only the time it lasts. :class:`Backoff` is the shared retry schedule: the k-th retry of
one outage waits ``min(max_s, base_s * 2**k)`` scaled by a random factor in [0.5, 1] (jitter: robots
that lost the broker together do not reconnect in lockstep). It logs one ``WARNING`` when an outage
starts and one ``INFO`` line when it ends (retries in between are ``DEBUG``), not one line per retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

try:  # optional dependency (extra "scale")
    import redis.exceptions as _redis_exc

    _REDIS_TRANSIENT: tuple[type[BaseException], ...] = (
        _redis_exc.ConnectionError,  # includes BusyLoadingError (server still loading its AOF)
        _redis_exc.TimeoutError,
    )
except ImportError:  # pragma: no cover - exercised only without the extra
    _REDIS_TRANSIENT = ()


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an outage worth waiting out (network, broker down or restarting), as opposed
    to a bug or bad data. ``OSError`` covers ``ConnectionError`` and ``TimeoutError``."""
    return isinstance(exc, (OSError, *_REDIS_TRANSIENT))


class Backoff:
    """Retry schedule of one kind of call (see module docstring). Not thread-safe: one per loop."""

    def __init__(self, what: str, base_s: float = 0.1, max_s: float = 5.0,
                 logger: logging.Logger | None = None) -> None:  # fmt: skip
        self.what = what
        self.base_s = float(base_s)
        """First delay of an outage, seconds (chosen)."""
        self.max_s = float(max_s)
        """Largest delay between two retries, seconds (chosen)."""
        self.log = logger or logging.getLogger(__name__)
        self.failures = 0
        """Consecutive failures of the current outage (0: no outage)."""
        self.outages = 0
        """Outages seen so far (each logged once)."""
        self._since = 0.0

    @property
    def in_outage(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Record a failure; return how long to wait before the next try (seconds, jittered)."""
        if self.failures == 0:
            self.outages += 1
            self._since = time.monotonic()
            self.log.warning("%s unavailable (%s: %s); retrying with backoff up to %.1fs until it is back",
                             self.what, type(exc).__name__, exc, self.max_s)  # fmt: skip
        else:
            self.log.debug("%s still unavailable (%s)", self.what, exc)
        delay = min(self.max_s, self.base_s * 2 ** min(self.failures, 30)) * random.uniform(0.5, 1.0)
        self.failures += 1
        return delay

    def succeeded(self) -> None:
        """Record a success: ends the current outage (logged once)."""
        if self.failures:
            self.log.info("%s is back after %.1fs (%d retries)", self.what,
                          time.monotonic() - self._since, self.failures)  # fmt: skip
        self.failures = 0

    def call(
        self, fn: Callable[[], T], stop: threading.Event | None = None, give_up_s: float | None = None
    ) -> T:
        """``fn()``, retried on transient errors until it succeeds. Non-transient errors propagate at
        once; so does the last transient one when ``stop`` is set or ``give_up_s`` seconds passed since
        the outage began (``None``: wait as long as the outage lasts)."""
        while True:
            try:
                out = fn()
            except Exception as e:
                if not is_transient(e):
                    raise
                delay = self.failed(e)
                if give_up_s is not None and time.monotonic() - self._since + delay > give_up_s:
                    raise
                if stop is not None:
                    if stop.wait(delay):
                        raise
                else:
                    time.sleep(delay)
                continue
            self.succeeded()
            return out
