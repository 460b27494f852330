"""A token bucket: at most `rate` messages per second from this process, so a provider's
limit is respected (several workers: give each its share of the provider's rate)."""

from __future__ import annotations

import threading
import time


class Throttle:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, count: int = 1) -> float:
        """Wait until `count` messages may go; returns the seconds waited. A batch larger
        than the bucket waits for its whole cost, then goes at once."""
        with self.lock:
            self._refill()
            self.tokens -= count
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait:
            time.sleep(wait)
        return wait

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
