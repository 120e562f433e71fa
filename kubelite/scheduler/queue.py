"""The scheduling queue (upstream internal/queue.PriorityQueue): activeQ, backoffQ, unschedulable pods.

activeQ pops the highest priority, then the oldest. A pod that failed waits out a per-pod
exponential backoff (1 s doubling to 10 s) in backoffQ; an unschedulable one parks in the
unschedulable set until a cluster event that one of its rejecting plugins cares about (node added,
pod deleted...) moves it back, or for at most 5 minutes. A move request that arrives while a pod is
being scheduled sends that pod, should it fail, to backoffQ instead of parking it (moveRequestCycle).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from kubelite.scheduler.nodeinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0
FLUSH_INTERVAL = 30.0

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "inflight"


class SchedulingQueue:
    def __init__(self) -> None:
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, PodInfo] = {}
        self._pods: dict[str, PodInfo] = {}
        self._where: dict[str, str] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._unsched_since: dict[str, float] = {}

    # -- adding -----------------------------------------------------------------------------------

    def _push_active(self, pi: PodInfo) -> None:
        self._where[pi.uid] = ACTIVE
        heapq.heappush(self._active, (-pi.priority, pi.timestamp, next(self._seq), pi.uid))
        self._wakeup.set()

    def _backoff_until(self, pi: PodInfo) -> float:
        if pi.attempts <= 0:
            return 0.0
        d = min(INITIAL_BACKOFF * (2 ** (pi.attempts - 1)), MAX_BACKOFF)
        return pi.timestamp + d

    def _push_backoff(self, pi: PodInfo) -> None:
        until = self._backoff_until(pi)
        if until <= time.monotonic():
            self._push_active(pi)
            return
        self._where[pi.uid] = BACKOFF
        heapq.heappush(self._backoff, (until, next(self._seq), pi.uid))
        self._arm_timer()

    def _arm_timer(self) -> None:
        if not self._backoff or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._backoff[0][0] - time.monotonic())
        self._timer = loop.call_later(delay, self._flush_backoff)

    def _flush_backoff(self) -> None:
        self._timer = None
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, uid = heapq.heappop(self._backoff)
            if self._where.get(uid) == BACKOFF:
                self._push_active(self._pods[uid])
        self._arm_timer()

    def add(self, pi: PodInfo) -> None:
        """A new pending pod."""
        if pi.uid in self._pods:
            self.update(pi.pod)
            return
        now = time.monotonic()
        pi.timestamp = now
        pi.initial_attempt = 0.0
        self._pods[pi.uid] = pi
        self._push_active(pi)

    def add_backoff(self, pi: PodInfo) -> None:
        """A pod whose binding failed: retry after its backoff."""
        pi.timestamp = time.monotonic()
        self._pods[pi.uid] = pi
        self._push_backoff(pi)

    def update(self, pod: dict) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        pi = self._pods.get(uid)
        if pi is None:
            return
        old_spec = (pi.pod.get("spec") or {})
        old_labels = pi.labels
        pi.update(pod)
        if self._where.get(uid) == UNSCHEDULABLE and ((pod.get("spec") or {}) != old_spec or pi.labels != old_labels):
            # upstream: an update that may make the pod schedulable moves it (isPodUpdated)
            self._unschedulable.pop(uid, None)
            self._push_backoff(pi)

    def delete(self, uid: str) -> None:
        self._pods.pop(uid, None)
        self._where.pop(uid, None)
        self._unschedulable.pop(uid, None)
        self._unsched_since.pop(uid, None)

    def __contains__(self, uid: str) -> bool:
        return uid in self._pods

    def get(self, uid: str) -> PodInfo | None:
        return self._pods.get(uid)

    # -- popping ----------------------------------------------------------------------------------

    async def pop(self) -> PodInfo | None:
        """The next pod to schedule; None once closed."""
        while True:
            while self._active:
                _, _, _, uid = heapq.heappop(self._active)
                if self._where.get(uid) != ACTIVE:
                    continue  # stale entry (deleted, moved)
                pi = self._pods[uid]
                self._where[uid] = IN_FLIGHT
                self.scheduling_cycle += 1
                pi.attempts += 1
                if not pi.initial_attempt:
                    pi.initial_attempt = time.monotonic()
                return pi
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, uid: str) -> None:
        """The pod left the scheduling cycle bound (or assumed): the queue forgets it."""
        if self._where.get(uid) == IN_FLIGHT:
            self.delete(uid)

    def requeue(self, pi: PodInfo, cycle: int, unschedulable: bool) -> None:
        """AddUnschedulableIfNotPresent: back off on errors; park unschedulable pods unless a move
        request came in during their cycle."""
        if pi.uid not in self._pods or self._where.get(pi.uid) != IN_FLIGHT:
            return
        pi.timestamp = time.monotonic()
        if unschedulable and self.move_request_cycle < cycle:
            self._where[pi.uid] = UNSCHEDULABLE
            self._unschedulable[pi.uid] = pi
            self._unsched_since[pi.uid] = pi.timestamp
        else:
            self._push_backoff(pi)

    def activate(self, uid: str) -> None:
        pi = self._pods.get(uid)
        if pi is not None and self._where.get(uid) in (UNSCHEDULABLE, BACKOFF):
            self._unschedulable.pop(uid, None)
            self._push_active(pi)

    def move_all(self, plugins_for_event: set[str] | None) -> None:
        """MoveAllToActiveOrBackoffQueue for one cluster event; None means every parked pod."""
        self.move_request_cycle = self.scheduling_cycle
        if not self._unschedulable:
            return
        moved = []
        for uid, pi in self._unschedulable.items():
            if plugins_for_event is None or not pi.unschedulable_plugins or pi.unschedulable_plugins & plugins_for_event:
                moved.append(uid)
        for uid in moved:
            pi = self._unschedulable.pop(uid)
            self._unsched_since.pop(uid, None)
            self._push_backoff(pi)

    def flush_unschedulable_left_over(self) -> None:
        """Pods parked longer than 5 minutes get another try whatever happened."""
        now = time.monotonic()
        for uid in [u for u, t in self._unsched_since.items() if now - t > MAX_IN_UNSCHEDULABLE]:
            pi = self._unschedulable.pop(uid, None)
            self._unsched_since.pop(uid, None)
            if pi is not None:
                self._push_backoff(pi)

    def pending_counts(self) -> tuple[int, int, int]:
        active = sum(1 for w in self._where.values() if w == ACTIVE)
        backoff = sum(1 for w in self._where.values() if w == BACKOFF)
        return active, backoff, len(self._unschedulable)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._wakeup.set()
