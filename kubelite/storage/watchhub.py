"""In-memory watch machinery: a ring of recent events, watchers indexed by prefix, bounded queues.

Mirrors upstream's watch cache (`k8s.io/apiserver/pkg/storage/cacher`): a watch replays from the
ring and then goes live; fan-out touches only the watchers whose prefix contains the key; a watcher
whose buffer fills up is stopped (its consumer sees the stream end and re-watches from the last
revision it saw) so that it never holds up the writer or the other watchers.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncIterator

from kubelite.storage.interface import CompactedError, Watch, WatchEvent


class MemoryWatch(Watch):
    """One watcher: events with revision > its start revision, under its prefix, in revision order.

    `revision` is the revision of the last event handed to the consumer (the start revision before
    any); `overflowed` tells why a stream ended early; `bookmark()` makes a BOOKMARK event.
    """

    def __init__(self, hub: WatchHub, prefix: str, revision: int, replay: list[WatchEvent], max_queue: int):
        self.prefix = prefix
        self.revision = revision
        self.overflowed = False
        self._hub = hub
        self._queue: deque[WatchEvent] = deque(replay)
        # The replay is already bounded by the history ring; the bound is for live events.
        self._limit = max_queue + len(replay)
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._queue:
                return self._pop()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def next(self, timeout: float) -> WatchEvent | None:
        """As __anext__, or None after timeout seconds without an event; a timer, not a task per event."""
        if not self._queue and not self._closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._queue:
            return self._pop()
        if self._closed:
            raise StopAsyncIteration
        return None

    def _pop(self) -> WatchEvent:
        ev = self._queue.popleft()
        self.revision = ev.revision
        return ev

    def close(self) -> None:
        """End the stream now: queued events are dropped."""
        if not self._closed:
            self._closed = True
            self._hub.remove(self)
        self._queue.clear()
        self._wake()

    def bookmark(self) -> WatchEvent:
        """A BOOKMARK at the newest revision this stream is known to be complete up to.

        With nothing queued, every event under the prefix up to the store's revision has been
        delivered (fan-out is synchronous with commit), so the store's revision is safe to announce.
        """
        rev = self.revision if self._queue else max(self.revision, self._hub.revision)
        return WatchEvent("BOOKMARK", "", {"metadata": {"resourceVersion": str(rev)}}, rev)

    @property
    def closed(self) -> bool:
        return self._closed

    def _push(self, ev: WatchEvent) -> bool:
        """Queue an event; False (and the watcher stops) if it is closed or its buffer is full."""
        if self._closed:
            return False
        if len(self._queue) >= self._limit:
            # Keep what is queued (no gap): the consumer drains it, sees the end, re-watches.
            self._closed = True
            self.overflowed = True
            return False
        self._queue.append(ev)
        return True

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class WatchHub:
    """The event ring and the registry of live watchers for one store."""

    def __init__(self, history: int, max_queue: int):
        self.history = max(0, history)
        self.max_queue = max(1, max_queue)
        self.revision = 0  # newest published revision
        self.forgotten = 0  # newest revision whose event is no longer kept
        self._events: list[WatchEvent] = []
        self._slack = self.history // 8  # trim in steps, not on every event
        self._by_prefix: dict[str, set[MemoryWatch]] = {}
        self._other: set[MemoryWatch] = set()  # prefixes that do not end with "/"

    def load(self, events: list[WatchEvent], forgotten: int, revision: int) -> None:
        """Seed the ring at start-up from the persisted log."""
        self._events = events[-self.history :] if self.history else []
        dropped = len(events) - len(self._events)
        self.forgotten = max(forgotten, events[dropped - 1].revision if dropped else 0)
        self.revision = revision
        if not self._events:
            self.forgotten = max(self.forgotten, revision)

    def watch(self, prefix: str, revision: int) -> MemoryWatch:
        if revision < self.forgotten:
            raise CompactedError(revision, self.forgotten + 1)
        start = bisect_right(self._events, revision, key=lambda e: e.revision)
        replay = [e for e in self._events[start:] if e.key.startswith(prefix)]
        w = MemoryWatch(self, prefix, revision, replay, self.max_queue)
        if prefix.endswith("/"):
            self._by_prefix.setdefault(prefix, set()).add(w)
        else:
            self._other.add(w)
        return w

    def remove(self, w: MemoryWatch) -> None:
        ws = self._by_prefix.get(w.prefix)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._by_prefix[w.prefix]
        self._other.discard(w)

    def publish(self, events: list[WatchEvent]) -> None:
        """Record committed events (in revision order) and hand them to the matching watchers."""
        if not events:
            return
        self.revision = events[-1].revision
        if self.history:
            self._events.extend(events)
            excess = len(self._events) - self.history
            if excess > self._slack:
                self.forgotten = self._events[excess - 1].revision
                del self._events[:excess]
        else:
            self.forgotten = self.revision
        woken: dict[MemoryWatch, None] = {}
        stopped: dict[MemoryWatch, None] = {}
        by_prefix = self._by_prefix
        for ev in events:
            key = ev.key
            # Only the watchers registered on one of the key's directory prefixes can match.
            i = key.find("/")
            while i >= 0:
                ws = by_prefix.get(key[: i + 1])
                if ws:
                    for w in ws:
                        if w._push(ev):
                            woken[w] = None
                        else:
                            stopped[w] = None
                i = key.find("/", i + 1)
            for w in self._other:
                if key.startswith(w.prefix):
                    if w._push(ev):
                        woken[w] = None
                    else:
                        stopped[w] = None
        for w in stopped:
            self.remove(w)
            w._wake()
        for w in woken:
            w._wake()

    def compact(self, revision: int) -> None:
        """Forget events at and before revision."""
        if revision <= self.forgotten:
            return
        start = bisect_right(self._events, revision, key=lambda e: e.revision)
        del self._events[:start]
        self.forgotten = revision

    def close_all(self) -> None:
        """End every stream (store shutdown); consumers drain what is queued, then see the end."""
        watchers = [w for ws in self._by_prefix.values() for w in ws] + list(self._other)
        self._by_prefix.clear()
        self._other.clear()
        for w in watchers:
            w._closed = True
            w._wake()
