"""A rate-limited work queue with client-go's semantics (util/workqueue), for asyncio.

- A key is queued at most once however often it is added (the dirty set).
- A key being processed is never handed to a second worker; added meanwhile, it is queued again
  when the first worker calls `done(key)` (the processing set).
- `add_after` delays an add; `add_rate_limited` delays it by the larger of a per-key exponential
  backoff (5 ms doubling up to 1000 s, until `forget(key)`) and an overall token bucket (10/s, burst
  100), client-go's DefaultControllerRateLimiter: a key requeued in a loop cannot spin.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable
from typing import Any


class ShutDown(Exception):
    """Raised by `get()` once the queue is shut down and drained."""


class ItemExponentialFailureRateLimiter:
    """Per-item backoff base * 2^failures, capped (client-go's default for controllers)."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0):
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        if n > 62:  # avoid overflow, as upstream does
            return self.max_delay
        return min(self.base_delay * (2 ** n), self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket: `qps` adds per second after a burst of `burst`."""

    def __init__(self, qps: float = 10.0, burst: int = 100):
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: Hashable) -> float:
        now = time.monotonic()
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1  # reserve a token; a debt is paid by waiting
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters (client-go's MaxOfRateLimiter)."""

    def __init__(self, *limiters: Any):
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(), BucketRateLimiter())


class WorkQueue:
    """Dirty/processing-set queue with delayed and rate-limited adds. Use from one event loop."""

    def __init__(self, name: str = "", rate_limiter: Any | None = None):
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: deque[asyncio.Future] = deque()
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # -- plain queue --------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> Hashable:
        """The next key; the caller must call `done(key)` after processing it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif self._queue:  # we were woken for an item we will not take: pass it on
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def __len__(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        """Stop accepting adds; getters drain what is queued, then get ShutDown."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # -- delaying ------------------------------------------------------------------------------

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add `key` after `delay` seconds; of several pending delays for one key the earliest wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        handle = loop.call_at(ready_at, self._fire, key)
        self._delayed[key] = (ready_at, handle)

    def _fire(self, key: Hashable) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    # -- rate limiting ---------------------------------------------------------------------------

    def add_rate_limited(self, key: Hashable) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        """Stop tracking failures of `key` (call after a successful sync)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.num_requeues(key)
