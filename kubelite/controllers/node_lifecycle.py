"""NodeLifecycleController (upstream pkg/controller/nodelifecycle): node health from heartbeats.

Watches nodes and their Leases in kube-node-lease. A node whose Ready condition heartbeat and
Lease renewTime have not changed (as observed by this controller) for node-monitor-grace-period
gets Ready/MemoryPressure/DiskPressure/PIDPressure Unknown "Kubelet stopped posting node status.".
On Ready leaving True the node gets a NodeNotReady event and its pods Ready=False. Taints follow
the conditions: not-ready / unreachable NoExecute (with timeAdded) for taint-based eviction, and
the NoSchedule condition taints (not-ready, unreachable, memory/disk/pid-pressure,
network-unavailable, unschedulable) for the scheduler.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_MONITOR_GRACE_PERIOD = 40.0
NODE_STARTUP_GRACE_PERIOD = 60.0
NODE_MONITOR_PERIOD = 5.0

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
# nodeConditionToTaintKeyStatusMap
CONDITION_TAINTS = {
    ("Ready", "False"): TAINT_NOT_READY,
    ("Ready", "Unknown"): TAINT_UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
}
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINT_KEYS = set(CONDITION_TAINTS.values()) | {TAINT_UNSCHEDULABLE}
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_SIZE_THRESHOLD = 50
NORMAL, PARTIAL_DISRUPTION, FULL_DISRUPTION = "Normal", "PartialDisruption", "FullDisruption"


def zone_key(node: Obj) -> str:
    """nodetopology.GetZoneKey: region and zone labels ("" when the node has neither)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: int, not_ready: int) -> str:
    """ComputeZoneState: no ready node is a full disruption; more than two and 55 % not ready, partial."""
    if ready == 0 and not_ready > 0:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / (ready + not_ready) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL_DISRUPTION
    return NORMAL


def zone_states(nodes: list[Obj]) -> dict[str, tuple[str, int]]:
    """zone -> (state, size) over the nodes' Ready conditions."""
    counts: dict[str, list[int]] = {}
    for n in nodes:
        c = get_condition(n, "Ready")
        ok = c is not None and c.get("status") == "True"
        counts.setdefault(zone_key(n), [0, 0])[0 if ok else 1] += 1
    return {z: (zone_state(r, nr), r + nr) for z, (r, nr) in counts.items()}


def monitor_grace_period() -> float:
    """node-monitor-grace-period; KUBELITE_NODE_MONITOR_GRACE_PERIOD (seconds) overrides the 40 s default."""
    v = os.environ.get("KUBELITE_NODE_MONITOR_GRACE_PERIOD")
    try:
        return float(v) if v else DEFAULT_MONITOR_GRACE_PERIOD
    except ValueError:
        return DEFAULT_MONITOR_GRACE_PERIOD


def get_condition(node: Obj, ctype: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


@dataclass
class NodeHealth:
    """nodeHealthData: what this controller last saw and when (its own clock, not the kubelet's)."""
    probe_timestamp: float
    ready_heartbeat: str | None
    lease_renew: str | None
    ready_status: str | None


class NodeLifecycleController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 1,
                 grace_period: float | None = None):
        self.nodes = client.resource("", "v1", "nodes")
        self.pods = client.resource("", "v1", "pods")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.lease_informer = factory.informer("coordination.k8s.io", "v1", "leases")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.recorder = EventRecorder(client, "node-controller")
        self.grace_period = grace_period if grace_period is not None else monitor_grace_period()
        self.health: dict[str, NodeHealth] = {}
        self.controller = Controller("node-lifecycle-controller", self.sync, workers=workers)
        self.controller.watch(self.node_informer)
        self.lease_informer.add_handler(self._lease_changed, lambda _o, n: self._lease_changed(n), None)

    def _lease_changed(self, lease: Obj) -> None:
        if (lease.get("metadata") or {}).get("namespace") == NODE_LEASE_NAMESPACE:
            self.controller.enqueue(lease["metadata"]["name"])

    # ---------------------------------------------------------------- sync
    async def sync(self, name: str) -> float | None:
        try:
            return await self._sync(name)
        except StatusError as e:
            if e.code == 409:  # the cache was behind a write: look again shortly
                return 0.5
            raise

    async def _sync(self, name: str) -> float | None:
        node = self.node_informer.store.get(None, name)
        if node is None:
            if self.health.pop(name, None) is not None:
                self._node_event(name, "", "RemovingNode", f"Removing Node {name} from Controller")
            return None
        node = dict(node)  # shallow: only status is replaced, never mutated in place
        if name not in self.health:
            self._node_event(name, node["metadata"].get("uid", ""), "RegisteredNode",
                             f"Registered Node {name} in Controller")
        now = time.time()
        observed_ready = await self._try_update_node_health(node, now)
        current = get_condition(node, "Ready")
        if current is not None and observed_ready is not None:
            if observed_ready.get("status") == "True" and current.get("status") != "True":
                self.recorder.event({"kind": "Node", "apiVersion": "v1",
                                     "metadata": {"name": name, "uid": node["metadata"].get("uid", "")}},
                                    "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                await self._mark_pods_not_ready(name)
            elif current.get("status") != "True":
                await self._mark_pods_not_ready(name)
        await self._sync_taints(node)
        h = self.health.get(name)
        wait = NODE_MONITOR_PERIOD
        if h is not None:
            grace = self.grace_period if current is not None else NODE_STARTUP_GRACE_PERIOD
            left = h.probe_timestamp + grace - time.time()
            if 0 < left < wait:
                wait = left + 0.05
        return wait

    def _node_event(self, name: str, uid: str, reason: str, event: str) -> None:
        """nodeutil.RecordNodeEvent: about the node by name and uid, worded "Node <name> event: ..."."""
        self.recorder.event({"kind": "Node", "metadata": {"name": name, "uid": uid}}, "Normal", reason,
                            f"Node {name} event: {event}")

    async def _try_update_node_health(self, node: Obj, now: float) -> Obj | None:
        """tryUpdateNodeHealth: refresh the probe time on a new heartbeat or lease renewal; past the
        grace period mark the monitored conditions Unknown. Returns the Ready condition as observed
        before any change (None when the kubelet never posted one)."""
        name = node["metadata"]["name"]
        ready = get_condition(node, "Ready")
        observed = dict(ready) if ready is not None else None
        grace = self.grace_period
        created = metautil.parse_time(node["metadata"].get("creationTimestamp")) or now
        h = self.health.get(name)
        heartbeat = ready.get("lastHeartbeatTime") if ready else None
        if ready is None:
            grace = NODE_STARTUP_GRACE_PERIOD
            if h is None:
                h = NodeHealth(created, None, None, None)
        elif h is None:
            h = NodeHealth(now, heartbeat, None, ready.get("status"))
        elif h.ready_heartbeat != heartbeat:
            h.probe_timestamp = now
            h.ready_heartbeat = heartbeat
        lease = self.lease_informer.store.get(NODE_LEASE_NAMESPACE, name)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        if renew and renew != h.lease_renew:
            if h.lease_renew is None or (metautil.parse_time(renew) or 0) >= (metautil.parse_time(h.lease_renew) or 0):
                h.probe_timestamp = now
            h.lease_renew = renew
        self.health[name] = h
        if now <= h.probe_timestamp + grace:
            return observed
        stamp = metautil.now_rfc3339(now)
        conditions = list((node.get("status") or {}).get("conditions") or [])
        changed = False
        for ctype in MONITORED_CONDITIONS:
            cur = next((c for c in conditions if c.get("type") == ctype), None)
            if cur is None:
                conditions.append({"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.",
                                   "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                                   "lastTransitionTime": stamp})
                changed = True
            elif cur.get("status") != "Unknown":
                idx = conditions.index(cur)
                conditions[idx] = dict(cur, status="Unknown", reason="NodeStatusUnknown",
                                       message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                changed = True
        if changed:
            node["status"] = dict(node.get("status") or {}, conditions=conditions)
            try:
                updated = await self.nodes.update_status(node)
                node["metadata"] = updated.get("metadata") or node["metadata"]
            except StatusError as e:
                if e.code != 404:
                    raise
        return observed

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """MarkPodsNotReady: each pod on the node gets Ready=False and a NodeNotReady event."""
        for pod in self.pod_informer.store.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            conds = list((pod.get("status") or {}).get("conditions") or [])
            idx = next((i for i, c in enumerate(conds) if c.get("type") == "Ready"), None)
            if idx is None or conds[idx].get("status") == "False":
                continue
            conds[idx] = dict(conds[idx], status="False", lastTransitionTime=metautil.now_rfc3339())
            new = dict(pod)
            new["status"] = dict(pod.get("status") or {}, conditions=conds)
            try:
                await self.pods.update_status(new)
            except StatusError as e:
                if e.code in (404, 409):
                    continue
                raise
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _sync_taints(self, node: Obj) -> None:
        """processTaintBaseEviction + doNoScheduleTaintingPass: taints that mirror the conditions."""
        taints = list((node.get("spec") or {}).get("taints") or [])
        ready = get_condition(node, "Ready")
        ready_status = ready.get("status") if ready else None
        now = metautil.now_rfc3339()
        want_no_execute: str | None = None
        if ready_status == "False":
            want_no_execute = TAINT_NOT_READY
        elif ready_status == "Unknown":
            want_no_execute = TAINT_UNREACHABLE
        # handleDisruption: when every zone has lost all its nodes the control plane is the likely
        # culprit, so nothing is evicted (taints lifted); a zone in partial disruption of a small
        # cluster gets no new NoExecute taints (eviction rate 0)
        keep_only = False
        if want_no_execute:  # the zones matter only to a node that would get a NoExecute taint
            name = node["metadata"]["name"]
            nodes = [node if n["metadata"]["name"] == name else n for n in self.node_informer.store.list()]
            states = zone_states(nodes)
            if states and all(st == FULL_DISRUPTION for st, _ in states.values()):
                want_no_execute = None
            else:
                st, size = states.get(zone_key(node), (NORMAL, 1))
                keep_only = st == PARTIAL_DISRUPTION and size <= LARGE_CLUSTER_SIZE_THRESHOLD
        new: list[Obj] = []
        for t in taints:
            if t.get("effect") == "NoExecute" and t.get("key") in (TAINT_NOT_READY, TAINT_UNREACHABLE):
                if t.get("key") == want_no_execute:
                    new.append(t)
                continue
            if t.get("effect") == "NoSchedule" and t.get("key") in CONDITION_TAINT_KEYS:
                continue
            new.append(t)
        if want_no_execute and not keep_only and \
                not any(t.get("key") == want_no_execute and t.get("effect") == "NoExecute" for t in new):
            new.append({"key": want_no_execute, "effect": "NoExecute", "timeAdded": now})
        no_schedule = []
        for c in (node.get("status") or {}).get("conditions") or []:
            key = CONDITION_TAINTS.get((c.get("type"), c.get("status")))
            if key:
                no_schedule.append(key)
        if (node.get("spec") or {}).get("unschedulable"):
            no_schedule.append(TAINT_UNSCHEDULABLE)
        for key in no_schedule:
            existing = next((t for t in taints if t.get("key") == key and t.get("effect") == "NoSchedule"), None)
            new.append(existing or {"key": key, "effect": "NoSchedule"})
        if _taint_set(new) == _taint_set(taints):
            return
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "spec": {"taints": new or None}}
        try:
            await self.nodes.patch(node["metadata"]["name"], patch)
        except StatusError as e:
            if e.code == 404:
                return
            raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()


def _taint_set(taints: list[Obj]) -> set[tuple]:
    return {(t.get("key"), t.get("value") or "", t.get("effect")) for t in taints}
