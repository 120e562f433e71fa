"""TaintEvictionController (upstream pkg/controller/tainteviction, the NoExecute taint manager).

Watches pods and nodes. A pod on a node with a NoExecute taint it does not tolerate is deleted at
once; one it tolerates for tolerationSeconds is deleted that long after the taint manager first
saw it tainted (the shortest tolerationSeconds wins); removing the taint cancels the eviction.
Before deleting, the pod gets the DisruptionTarget condition (DeletionByTaintManager).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, index_by_node_name
from kubelite.controllers.daemonset.predicates import toleration_tolerates_taint

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def no_execute_taints(node: Obj | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def min_toleration_seconds(pod: Obj, taints: list[Obj]) -> float | None:
    """None: some taint is not tolerated (evict now); inf: tolerated forever; else the shortest tolerationSeconds."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    best = float("inf")
    for taint in taints:
        used = [t for t in tolerations if toleration_tolerates_taint(t, taint)]
        if not used:
            return None
        for t in used:
            if t.get("tolerationSeconds") is not None:
                best = min(best, max(float(t["tolerationSeconds"]), 0.0))
    return best


class TaintEvictionController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.pods = client.resource("", "v1", "pods")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.pod_informer.store.add_index("nodeName", index_by_node_name)
        self.recorder = EventRecorder(client, "taint-eviction-controller")
        self.scheduled: dict[str, float] = {}  # pod key -> when the eviction timer started
        self.controller = Controller("taint-eviction-controller", self.sync, workers=workers)
        self.controller.watch(self.pod_informer, self._pod_key)
        self.node_informer.add_handler(self._node_changed, lambda _o, n: self._node_changed(n), self._node_changed)

    @staticmethod
    def _pod_key(pod: Obj) -> str | None:
        if not (pod.get("spec") or {}).get("nodeName"):
            return None
        return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"

    def _node_changed(self, node: Obj) -> None:
        for pod in self.pod_informer.store.by_index("nodeName", node["metadata"]["name"]):
            self.controller.enqueue(pod)

    async def sync(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        pod = self.pod_informer.store.get(ns, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self.scheduled.pop(key, None)
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self.node_informer.store.get(None, node_name) if node_name else None
        taints = no_execute_taints(node)
        if not taints:
            self._cancel(pod, key)
            return None
        wait = min_toleration_seconds(pod, taints)
        now = time.monotonic()
        if wait is None:
            await self._evict(pod, key)
            return None
        if wait == float("inf"):
            self._cancel(pod, key)
            return None
        started = self.scheduled.setdefault(key, now)
        left = started + wait - now
        if left > 0:
            return left
        await self._evict(pod, key)
        return None

    def _cancel(self, pod: Obj, key: str) -> None:
        if self.scheduled.pop(key, None) is not None:
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    async def _evict(self, pod: Obj, key: str) -> None:
        """addConditionAndDeletePod: DisruptionTarget first, then delete."""
        self.scheduled.pop(key, None)
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        m = pod["metadata"]
        conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                      "message": "Taint manager: deleting due to NoExecute taint",
                      "lastTransitionTime": metautil.now_rfc3339()})
        try:
            await self.pods.update_status({**pod, "status": {**(pod.get("status") or {}), "conditions": conds}})
        except StatusError as e:
            if e.code == 404:
                return
            if e.code != 409:
                raise
        try:
            await self.pods.delete(m["name"], namespace=m["namespace"], preconditions={"uid": m["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
