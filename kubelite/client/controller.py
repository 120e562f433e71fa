"""The worker loop of a sample-controller style control loop, written once.

A controller file says what it watches (`controller.watch(informer)` or custom handlers calling
`controller.enqueue(obj)`), what it owns, and `async sync(key)`: one level-triggered step toward
the desired state. Failures are logged and retried with per-key backoff; success forgets the key.
`sync` may return a number of seconds to be called again for the key after that delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.client.informer import meta_namespace_key
from kubelite.client.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

SyncFunc = Callable[[str], Awaitable[float | None]]


class Controller:
    def __init__(self, name: str, sync: SyncFunc, workers: int = 1, queue: WorkQueue | None = None):
        self.name = name
        self.sync = sync
        self.workers = workers
        self.queue = queue or WorkQueue(name)
        self._tasks: list[asyncio.Task] = []

    def enqueue(self, obj: dict | str) -> None:
        """Queue the key of an object (`namespace/name`) or a key as is."""
        self.queue.add(obj if isinstance(obj, str) else meta_namespace_key(obj))

    def enqueue_after(self, obj: dict | str, delay: float) -> None:
        self.queue.add_after(obj if isinstance(obj, str) else meta_namespace_key(obj), delay)

    def enqueue_rate_limited(self, obj: dict | str) -> None:
        self.queue.add_rate_limited(obj if isinstance(obj, str) else meta_namespace_key(obj))

    def watch(self, informer: Any, key: Callable[[dict], str | None] | None = None) -> None:
        """Enqueue on every add, update and delete of `informer`'s objects; `key` maps an object to the
        key to reconcile (e.g. a pod to its owner), None to skip."""
        def on_event(obj: dict) -> None:
            k = key(obj) if key else meta_namespace_key(obj)
            if k:
                self.queue.add(k)

        informer.add_handler(on_add=on_event, on_update=lambda _old, new: on_event(new), on_delete=on_event)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                again = await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: error syncing %r (retry %d)", self.name, key, self.queue.num_requeues(key) + 1)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again:
                    self.queue.add_after(key, float(again))
            finally:
                self.queue.done(key)

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                           for i in range(self.workers)]

    async def run(self) -> None:
        """Start the workers and wait for them (until `stop()` or cancellation)."""
        self.start()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
