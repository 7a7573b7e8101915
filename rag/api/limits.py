"""Per-caller rate limits (token buckets) and the bound on answers in flight.

Both live in one process: with several uvicorn workers, each enforces its own share.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["InFlight", "RateLimiter"]


class RateLimiter:
    """A token bucket per caller: `burst` requests at once, then `rate_per_minute`, refilled continuously.

    Buckets of callers not seen for a while are dropped (at most `max_callers` kept), so a flood of
    client addresses cannot grow memory without bound.
    """

    def __init__(self, rate_per_minute: float, burst: int, *, max_callers: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_minute, self.burst = rate_per_minute, burst
        self._clock, self._max = clock, max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str, rate_per_minute: float | None = None) -> float | None:
        """Spend one request of `caller`'s budget: None when allowed, else the seconds until the next one is."""
        rate = (rate_per_minute or self.rate_per_minute) / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * rate)
            allowed = tokens >= 1.0
            self._buckets[caller] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """Retry-After in whole seconds, never 0 (a client retrying at once would be refused again)."""
        return str(max(1, math.ceil(wait_s)))


class InFlight:
    """How many answers are being worked on; `enter` refuses beyond `limit` instead of queueing."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0

    def enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1  # the event loop's thread only: no lock needed
        return True

    def leave(self) -> None:
        self.count -= 1
