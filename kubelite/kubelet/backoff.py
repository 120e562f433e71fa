"""flowcontrol.Backoff as the kubelet uses it: per-key delays doubling from 10 s to 5 min."""

from __future__ import annotations

import time


class Backoff:
    def __init__(self, initial: float = 10.0, maximum: float = 300.0, clock=time.time):
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def next(self, key: str) -> float:
        """Record one more failure: the first delay, or twice the last one; a key quiet for twice the
        maximum starts over (upstream's hasExpired)."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            delay = self.initial
        else:
            delay = min(entry[0] * 2, self.maximum)
        self._entries[key] = (delay, now)
        return delay

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry else 0.0

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """True while less than the current delay has passed since `event_time`."""
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[1] > 2 * self.maximum:
            return False
        return self.clock() - event_time < entry[0]

    def remaining(self, key: str, event_time: float) -> float:
        entry = self._entries.get(key)
        return max(0.0, entry[0] - (self.clock() - event_time)) if entry else 0.0

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]
