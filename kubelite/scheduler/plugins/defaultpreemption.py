"""DefaultPreemption (PostFilter): make room for a pod by evicting lower-priority pods.

For every node where preemption can help, remove all lower-priority pods, check the pod fits, then
reprieve as many of them as possible, highest priority first. The node chosen is the one whose
victims have the lowest highest priority, then the smallest priority sum, then the fewest victims,
then the latest start. Victims get the DisruptionTarget condition (reason PreemptionByScheduler), a
Preempted event and a graceful delete; the preemptor gets status.nominatedNodeName.
"""

from __future__ import annotations

import asyncio
import logging

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    UNSCHEDULABLE_AND_UNRESOLVABLE,
    Plugin,
    Status,
    fit_error_message,
    unresolvable,
    unschedulable,
)
from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


def _start_time(pi: PodInfo) -> str:
    return ((pi.pod.get("status") or {}).get("startTime") or
            (pi.pod.get("metadata") or {}).get("creationTimestamp") or "")


class DefaultPreemption(Plugin):
    name = "DefaultPreemption"
    events = frozenset((NODE_ADD, NODE_UPDATE, POD_DELETE))

    def __init__(self, handle):
        super().__init__(handle)
        self._tasks: set[asyncio.Task] = set()

    def _eligible(self, pod: PodInfo) -> str:
        """PodEligibleToPreemptOthers: '' when eligible, else why not."""
        spec = pod.pod.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            ni = self.handle.cache.node(nominated)
            if ni is not None and any(p.terminating and p.priority < pod.priority for p in ni.pods.values()):
                return "not eligible due to a terminating pod on the nominated node."
        return ""

    def _fits(self, state, pod: PodInfo, node: NodeInfo) -> Status | None:
        return self.handle.framework.run_filters(state, pod, node)

    def select_victims(self, state, pod: PodInfo, node: NodeInfo) -> tuple[list[PodInfo] | None, Status | None]:
        clone = node.clone()
        potential = [p for p in clone.pods.values() if p.priority < pod.priority]
        if not potential:
            return None, unresolvable(NO_VICTIMS)
        for p in potential:
            clone.remove_pod(p.uid)
        st = self._fits(state, pod, clone)
        if st is not None:
            return None, st
        potential.sort(key=lambda p: (-p.priority, _start_time(p)))
        victims = []
        for p in potential:  # reprieve the most important first
            clone.add_pod(p)
            if self._fits(state, pod, clone) is not None:
                clone.remove_pod(p.uid)
                victims.append(p)
        if not victims:
            return None, unresolvable(NO_VICTIMS)
        return victims, None

    def post_filter(self, state, pod: PodInfo, statuses: dict[str, Status]) -> tuple[str | None, Status]:
        why = self._eligible(pod)
        if why:
            return None, unschedulable("preemption: " + why)
        cache = self.handle.cache
        candidates: list[tuple[NodeInfo, list[PodInfo]]] = []
        node_statuses: dict[str, Status] = {}
        for node in cache.node_list:
            st = statuses.get(node.name)
            if st is not None and st.code == UNSCHEDULABLE_AND_UNRESOLVABLE:
                node_statuses[node.name] = unresolvable(NOT_HELPFUL)
                continue
            victims, st = self.select_victims(state, pod, node)
            if victims is None:
                node_statuses[node.name] = st or unresolvable(NO_VICTIMS)
            else:
                candidates.append((node, victims))
        if not candidates:
            msg = fit_error_message(cache.num_nodes, node_statuses)
            return None, unschedulable("preemption: " + msg)
        node, victims = min(candidates, key=lambda c: (
            max(v.priority for v in c[1]), sum(v.priority for v in c[1]), len(c[1]),
            _neg_time(max((v for v in c[1]), key=lambda v: v.priority))))
        self._spawn(self._preempt(pod, node.name, victims))
        return node.name, Status(0)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _preempt(self, pod: PodInfo, node_name: str, victims: list[PodInfo]) -> None:
        """PrepareCandidate: mark, record and delete every victim."""
        client, recorder = self.handle.client, self.handle.recorder
        for v in victims:
            cond = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                    "lastTransitionTime": metautil.now_rfc3339(), "reason": "PreemptionByScheduler",
                    "message": "default-scheduler: preempting to accommodate a higher priority pod"}
            try:
                await client.pods.patch(v.name, {"status": {"conditions": [cond]}}, "strategic",
                                        namespace=v.namespace, subresource="status")
            except StatusError as e:
                if e.code != 404:
                    log.warning("preemption: marking %s failed: %s", v.key, e.message)
            try:
                await client.pods.delete(v.name, namespace=v.namespace, preconditions={"uid": v.uid})
            except StatusError as e:
                if e.code not in (404, 409):
                    log.warning("preemption: deleting %s failed: %s", v.key, e.message)
                continue
            if recorder is not None:
                recorder.event(v.pod, "Normal", "Preempted", f"Preempted by pod {pod.uid} on node {node_name}")

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _neg_time(pi: PodInfo) -> tuple:
    # later start wins ties: sort descending on the RFC3339 string (lexicographic == chronological)
    s = _start_time(pi)
    return tuple(-ord(ch) for ch in s)
