"""PodGCController (upstream pkg/controller/podgc): collect pods nobody else will.

Every gc period: terminated pods beyond terminated-pod-gc-threshold (12500), oldest first; pods
bound to nodes that no longer exist (seen missing twice, quarantineTime apart, the second time by
a live read), first marked Failed with DisruptionTarget DeletionByPodGC; terminating pods that
were never scheduled. Deletions are forced (grace period 0): no kubelet will confirm them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
TERMINATED_POD_THRESHOLD = 12500


class PodGCController:
    def __init__(self, client: Any, factory: SharedInformerFactory, period: float = GC_CHECK_PERIOD,
                 quarantine: float = QUARANTINE_TIME, threshold: int = TERMINATED_POD_THRESHOLD):
        self.pods = client.resource("", "v1", "pods")
        self.nodes = client.resource("", "v1", "nodes")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.period, self.quarantine, self.threshold = period, quarantine, threshold
        self.missing_since: dict[str, float] = {}  # node name -> first seen missing
        self._task: asyncio.Task | None = None

    async def gc(self) -> None:
        """One pass of gc(): terminated, orphaned, unscheduled-terminating."""
        pods = self.pod_informer.store.list()
        await self._gc_terminated(pods)
        await self._gc_orphaned(pods)
        await self._gc_unscheduled_terminating(pods)

    async def _gc_terminated(self, pods: list[Obj]) -> None:
        if self.threshold <= 0:
            return
        done = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]
        excess = len(done) - self.threshold
        if excess <= 0:
            return
        done.sort(key=lambda p: (metautil.parse_time(p["metadata"].get("creationTimestamp")) or 0.0,
                                 p["metadata"]["name"]))
        await asyncio.gather(*(self._force_delete(p) for p in done[:excess]))

    async def _gc_orphaned(self, pods: list[Obj]) -> None:
        now = time.monotonic()
        known = {n["metadata"]["name"] for n in self.node_informer.store.list()}
        bound = {(p.get("spec") or {}).get("nodeName") for p in pods} - {None, ""}
        for name in list(self.missing_since):
            if name in known or name not in bound:
                del self.missing_since[name]
        gone: set[str] = set()
        for name in bound - known:
            first = self.missing_since.setdefault(name, now)
            if now - first < self.quarantine:
                continue
            try:
                await self.nodes.get(name)
                self.missing_since.pop(name, None)
                continue
            except StatusError as e:
                if e.code != 404:
                    continue
            gone.add(name)
        for p in pods:
            if (p.get("spec") or {}).get("nodeName") in gone:
                await self._mark_failed_and_delete(p, "DeletionByPodGC", "PodGC: node no longer exists")

    async def _gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for p in pods:
            if p["metadata"].get("deletionTimestamp") and not (p.get("spec") or {}).get("nodeName"):
                await self._force_delete(p)

    async def _mark_failed_and_delete(self, pod: Obj, reason: str, message: str) -> None:
        status = dict(pod.get("status") or {})
        if status.get("phase") not in ("Succeeded", "Failed"):
            status["phase"] = "Failed"
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
            conds.append({"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message,
                          "lastTransitionTime": metautil.now_rfc3339()})
            status["conditions"] = conds
            try:
                await self.pods.update_status({**pod, "status": status})
            except StatusError as e:
                if e.code == 404:
                    return
        await self._force_delete(pod)

    async def _force_delete(self, pod: Obj) -> None:
        m = pod["metadata"]
        try:
            await self.pods.delete(m["name"], namespace=m["namespace"], grace_period_seconds=0,
                                   preconditions={"uid": m["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                log.warning("podgc: deleting %s/%s: %s", m["namespace"], m["name"], e.message)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.gc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod garbage collection failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="podgc")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
