"""One worker task per pod UID, as upstream's podWorkers: syncs of one pod never overlap, wake-ups
coalesce, and each sync says when it wants to run again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class _Worker:
    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.done = False


class PodWorkers:
    """`sync(uid)` returns seconds until the next sync, None to wait for a wake-up, or raises
    (retried with backoff); `forget(uid)` ends a pod's worker once it is gone."""

    def __init__(self, sync: Callable[[str], Awaitable[float | None]], max_idle: float = 60.0):
        self._sync = sync
        self._workers: dict[str, _Worker] = {}
        self.max_idle = max_idle

    def wake(self, uid: str) -> None:
        w = self._workers.get(uid)
        if w is None or w.done:
            w = self._workers[uid] = _Worker()
            w.task = asyncio.get_running_loop().create_task(self._run(uid, w), name=f"pod-worker-{uid[:8]}")
        w.wake.set()

    def uids(self) -> list[str]:
        return [u for u, w in self._workers.items() if not w.done]

    def forget(self, uid: str) -> None:
        w = self._workers.pop(uid, None)
        if w is not None and w.task is not None and w.task is not asyncio.current_task():
            w.done = True
            w.task.cancel()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    async def _run(self, uid: str, w: _Worker) -> None:
        failures = 0
        delay: float | None = 0
        while True:
            try:
                await asyncio.wait_for(w.wake.wait(), timeout=self.max_idle if delay is None else delay)
            except TimeoutError:
                pass
            w.wake.clear()
            try:
                delay = await self._sync(uid)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = min(0.5 * 2 ** failures, 30.0)
                log.exception("sync of pod %s failed (retry in %.1fs)", uid, delay)
