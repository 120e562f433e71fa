"""Simulated nodes in the manner of kubernetes-sigs/kwok: Nodes, Leases and pod lifecycles, no containers.

Desired state lives in the ConfigMap kube-system/kubelite-simulated-nodes, which is how `kubelite
nodes add|remove|kill` (or kubectl) reaches a running simulator:

  data:
    sim-node-0: '{}'                                  # a node with the default capacity
    big-1: '{"cpu": "64", "memory": "512Gi", "pods": "250", "labels": {"zone": "a"}}'
    sim-node-7: '{"state": "Killed"}'                 # kubelet dead: no more heartbeats
    _settings: '{"startDelay": 0.2, "readyDelay": 0.2, "stopDelay": 0.2, "sleepScale": 1.0,
                 "cpu": "32", "memory": "256Gi", "pods": "110", "unpullableImages": ["repo/img:tag"]}'

A key present means the Node should exist (it is registered if missing); a key removed means the
Node and its Lease are deleted. `kubelite server --simulated-nodes N` adds sim-node-0..N-1 at start.

Everything is one component on one event loop: one node informer (label kubelite.io/simulated=true),
one pod informer shared by all nodes, a work queue of pod keys whose `sync` recomputes the pod's
status from its spec and age (simulated_pods.desired_status) and asks to be called again at the
next transition, and one heartbeat loop renewing Leases every 10 s and node status every minute in
batches.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
import uuid
from typing import Any

import orjson

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, index_by_node_name, split_meta_namespace_key
from kubelite.client.workqueue import BucketRateLimiter
from kubelite.runtime import node_events, simulated_events
from kubelite.runtime.simulated_pods import PodClock, Settings, desired_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "kubelite-simulated-nodes"
SETTINGS_KEY = "_settings"
SIMULATED_LABEL = "kubelite.io/simulated"
DEFAULT_PREFIX = "sim-node-"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
LEASE_RENEW_INTERVAL = 10.0
NODE_STATUS_INTERVAL = 60.0
KUBELET_VERSION = "v1.32.4"
# the kubelet's defaults for its event client (eventRecordQPS, eventBurst), shared by all simulated nodes
EVENT_QPS, EVENT_BURST = 50.0, 100
PATCH_VISIBLE_WITHIN = 0.5  # seconds: a status patch whose watch event has not come by then changed nothing
CONTAINER_RUNTIME_VERSION = "containerd://1.7.24"
# InternalIPs from loopback: nothing should connect to a simulated node, and if something does the
# packets stay on this host
NODE_IP_RANGE = ipaddress.ip_network("127.231.0.0/16")
OVERFLOW_POD_RANGE = ipaddress.ip_network("100.64.0.0/10")  # pod CIDRs once cluster_cidr's /24s run out


def node_conditions(now: str, ready: bool = True, old: list[dict] | None = None) -> list[dict]:
    """The four kubelet conditions with upstream's reasons and messages."""
    prev = {c.get("type"): c for c in old or []}
    spec = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
         "kubelet is posting ready status" if ready else "container runtime is down"),
    ]
    out = []
    for ctype, status, reason, message in spec:
        p = prev.get(ctype)
        ltt = p.get("lastTransitionTime") if p is not None and p.get("status") == status else now
        out.append({"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": ltt,
                    "reason": reason, "message": message})
    return out


def parse_desired(cm: Obj | None) -> tuple[dict[str, dict], Settings]:
    """The ConfigMap's nodes (name -> spec) and settings; unreadable entries count as `{}`."""
    data = (cm or {}).get("data") or {}
    settings = Settings()
    raw = data.get(SETTINGS_KEY)
    if raw:
        try:
            settings = Settings.from_dict(orjson.loads(raw))
        except (ValueError, TypeError):
            log.warning("simulated nodes: ignoring unreadable %s", SETTINGS_KEY)
    nodes: dict[str, dict] = {}
    for k, v in data.items():
        if k == SETTINGS_KEY:
            continue
        try:
            spec = orjson.loads(v) if v and v.strip() else {}
        except ValueError:
            spec = {}
        nodes[k] = spec if isinstance(spec, dict) else {}
    return nodes, settings


def _without_nulls(v: Any) -> Any:
    """A JSON value with the null members of its objects dropped, as the API server stores it."""
    if isinstance(v, dict):
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_nulls(x) for x in v]
    return v


def _natural(name: str) -> tuple:
    """sim-node-2 before sim-node-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


class SimulatedNodes:
    """The simulator component; `start()` then `stop()`."""

    def __init__(self, client: Any, initial_nodes: int = 0, cluster_cidr: str = "10.42.0.0/16",
                 name_prefix: str = DEFAULT_PREFIX):
        self.client = client
        self.initial_nodes = initial_nodes
        self.name_prefix = name_prefix
        self.cluster_cidr = ipaddress.ip_network(cluster_cidr, strict=False)
        self.factory = SharedInformerFactory(client, trim_managed_fields=True)
        self.cm_informer = self.factory.informer("", "v1", "configmaps",
                                                 field_selector=f"metadata.name={CONFIGMAP_NAME}")
        self.node_informer = self.factory.informer("", "v1", "nodes", label_selector=f"{SIMULATED_LABEL}=true")
        self.pod_informer = self.factory.informer("", "v1", "pods")
        self.pod_informer.store.add_index("node", index_by_node_name)
        self.desired: dict[str, dict] = {}
        self.settings = Settings()
        self.alive: set[str] = set()  # nodes whose kubelet is "up"
        self.node_controller = Controller("simulated-nodes", self._sync_node, workers=8)
        self.pod_controller = Controller("simulated-pods", self._sync_pod, workers=16)
        self._clocks: dict[str, PodClock] = {}  # pod uid -> clock
        self._uid_by_key: dict[str, str] = {}  # namespace/name -> uid, to release a deleted pod's IP
        self._deleting: dict[str, float] = {}  # pod uid -> when we saw its deletion
        self._pod_ips: dict[str, set[int]] = {}  # node -> host offsets in its podCIDR in use
        self._leases: dict[str, Obj] = {}
        self._node_ips: dict[str, str] = {}
        self._cidrs: dict[str, str] = {}
        self._next_ip = 1  # search hints: allocation stays linear with thousands of nodes
        self._next_cidr = 0
        self._tasks: list[asyncio.Task] = []
        self._recorders: dict[str, EventRecorder] = {}  # node -> its kubelet's recorder
        self._event_limiter = BucketRateLimiter(EVENT_QPS, EVENT_BURST)
        self._images: dict[str, set[str]] = {}  # node -> images pulled there

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.cm_informer.add_handler(self._cm_changed, lambda _o, n: self._cm_changed(n), self._cm_deleted)
        self.node_informer.add_handler(self._node_event, lambda _o, n: self._node_event(n), self._node_event)
        self.pod_informer.add_handler(self._pod_event, lambda _o, n: self._pod_event(n), self._pod_event)
        await self.factory.start()
        await self.factory.wait_for_sync()
        for node in self.node_informer.store.list():
            self._remember_addresses(node)
        if self.initial_nodes > 0:
            await self.ensure_nodes([f"{self.name_prefix}{i}" for i in range(self.initial_nodes)])
        self.node_controller.start()
        self.pod_controller.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._renew_leases(), name="simulated-leases"),
                       loop.create_task(self._report_status(), name="simulated-node-status")]
        log.info("simulated nodes started (%d requested at start)", self.initial_nodes)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.node_controller.stop()
        await self.pod_controller.stop()
        await self.factory.stop()
        await asyncio.gather(*(r.stop() for r in self._recorders.values()))

    async def ensure_nodes(self, names: list[str]) -> None:
        """Add `names` to the desired state (creating the ConfigMap), keeping entries already there."""
        cms = self.client.configmaps
        for _ in range(5):
            try:
                cm = await cms.get(CONFIGMAP_NAME, namespace=CONFIGMAP_NAMESPACE)
            except StatusError as e:
                if e.code != 404:
                    raise
                body = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": CONFIGMAP_NAME, "namespace": CONFIGMAP_NAMESPACE},
                        "data": {n: "{}" for n in names}}
                try:
                    await cms.create(body, namespace=CONFIGMAP_NAMESPACE)
                    return
                except StatusError as e2:
                    if e2.code == 409:
                        continue
                    raise
            missing = {n: "{}" for n in names if n not in (cm.get("data") or {})}
            if not missing:
                return
            await cms.patch(CONFIGMAP_NAME, {"data": missing}, "merge", namespace=CONFIGMAP_NAMESPACE)
            return

    # -- desired state -----------------------------------------------------------------------------

    def _cm_changed(self, cm: Obj) -> None:
        if (cm.get("metadata") or {}).get("namespace") != CONFIGMAP_NAMESPACE:
            return
        old, old_settings = self.desired, self.settings
        self.desired, self.settings = parse_desired(cm)
        if self.node_informer.has_synced:  # addresses in name order, whatever order workers run in
            for name in sorted(set(self.desired) - set(old), key=_natural):
                if self.node_informer.store.get(None, name) is None:
                    self._allocate_node_ip(name)
                    self._allocate_cidr(name)
        for name in set(old) | set(self.desired):
            if old.get(name) != self.desired.get(name) or self.settings != old_settings:
                self.node_controller.enqueue(name)
        if self.settings != old_settings:
            for key in self.pod_informer.store.keys():
                self.pod_controller.enqueue(key)

    def _cm_deleted(self, cm: Obj) -> None:
        if (cm.get("metadata") or {}).get("namespace") != CONFIGMAP_NAMESPACE:
            return
        for name in self.desired:
            self.node_controller.enqueue(name)
        self.desired = {}

    def _node_event(self, node: Obj) -> None:
        self.node_controller.enqueue(node["metadata"]["name"])

    def _pod_event(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node in self.alive:
            self.pod_controller.enqueue(pod)
        elif not node:
            return
        elif (pod.get("metadata") or {}).get("uid") in self._clocks:
            self.pod_controller.enqueue(pod)  # deleted: release its IP

    # -- nodes -------------------------------------------------------------------------------------

    def _remember_addresses(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for a in (node.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                self._node_ips[name] = a.get("address")
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr:
            self._cidrs[name] = cidr

    def _allocate_node_ip(self, name: str) -> str:
        ip = self._node_ips.get(name)
        if ip:
            return ip
        used = set(self._node_ips.values())
        base, size = int(NODE_IP_RANGE.network_address), NODE_IP_RANGE.num_addresses
        for i in range(self._next_ip, size):
            if i % 256 in (0, 255):
                continue
            addr = str(ipaddress.IPv4Address(base + i))
            if addr not in used:
                self._next_ip = i + 1
                self._node_ips[name] = addr
                return addr
        raise RuntimeError("simulated node IP range exhausted")

    def _allocate_cidr(self, name: str) -> str:
        cidr = self._cidrs.get(name)
        if cidr:
            return cidr
        used = set(self._cidrs.values())
        ranges = [n for n in (self.cluster_cidr, OVERFLOW_POD_RANGE) if n.version == 4 and n.prefixlen <= 24]
        index = self._next_cidr
        for net in ranges:
            count = 1 << (24 - net.prefixlen)
            if index >= count:
                index -= count
                continue
            base = int(net.network_address)
            while index < count:
                s = f"{ipaddress.IPv4Address(base + (index << 8))}/24"
                self._next_cidr += 1
                index += 1
                if s not in used:
                    self._cidrs[name] = s
                    return s
            index = 0
        raise RuntimeError("simulated pod CIDRs exhausted")

    def _capacity(self, spec: dict) -> dict:
        s = self.settings
        return {"cpu": str(spec.get("cpu") or s.cpu), "memory": str(spec.get("memory") or s.memory),
                "pods": str(spec.get("pods") or s.pods), "ephemeral-storage": s.ephemeral_storage,
                "hugepages-1Gi": "0", "hugepages-2Mi": "0"}

    def node_object(self, name: str, spec: dict) -> Obj:
        now = metautil.now_rfc3339()
        ip = self._allocate_node_ip(name)
        cidr = self._allocate_cidr(name)
        labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "node.kubernetes.io/instance-type": "kubelite-simulated", SIMULATED_LABEL: "true"}
        labels.update({str(k): str(v) for k, v in (spec.get("labels") or {}).items()})
        capacity = self._capacity(spec)
        node: Obj = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "kubelite.io/simulated-by": "kubelite server"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {
                "capacity": capacity, "allocatable": dict(capacity),
                "conditions": node_conditions(now),
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                             "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                             "bootID": str(uuid.uuid4()), "kernelVersion": "6.1.0-kubelite-simulated",
                             "osImage": "kubelite simulated node", "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
                             "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                             "operatingSystem": "linux", "architecture": "amd64"},
            },
        }
        if spec.get("taints"):
            node["spec"]["taints"] = spec["taints"]
        return node

    async def _sync_node(self, name: str) -> None:
        spec = self.desired.get(name)
        node = self.node_informer.store.get(None, name)
        if spec is None:
            self.alive.discard(name)
            if node is not None:
                try:
                    await self.client.nodes.delete(name)
                except StatusError as e:
                    if e.code != 404:
                        raise
            try:
                await self.client.leases.delete(name, namespace=LEASE_NAMESPACE)
            except StatusError as e:
                if e.code != 404:
                    raise
            self._leases.pop(name, None)
            self._node_ips.pop(name, None)
            self._cidrs.pop(name, None)
            self._pod_ips.pop(name, None)
            return
        alive = (spec.get("state") or "Running") != "Killed"
        registered = node is None
        if node is None:
            try:
                node = await self.client.nodes.create(self.node_object(name, spec))
            except StatusError as e:
                if e.code != 409:
                    raise
                node = await self.client.nodes.get(name)
                if ((node.get("metadata") or {}).get("labels") or {}).get(SIMULATED_LABEL) != "true":
                    log.warning("simulated nodes: a node %s exists and is not simulated; leaving it alone", name)
                    return
            self._remember_addresses(node)
        if not alive:
            self.alive.discard(name)
            return
        was_alive = name in self.alive
        self.alive.add(name)
        await self._renew_lease(name, node)
        status = node.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        want = self._capacity(spec)
        if not was_alive or ready.get("status") != "True" or status.get("capacity") != want:
            await self._post_status(node, want)
        if not was_alive:
            old = [] if registered else status.get("conditions")
            new = node_conditions("", True)
            events = [node_events.STARTING, *node_events.condition_events(name, old, new)]
            if registered:
                events.append(node_events.ALLOCATABLE_ENFORCED)
            self._record(name, node_events.node_reference(name), events)
        if not was_alive:  # a revived (or newly seen) kubelet picks up its pods
            for pod in self.pod_informer.store.by_index("node", name):
                self.pod_controller.enqueue(pod)

    async def _post_status(self, node: Obj, capacity: dict | None = None) -> None:
        name = node["metadata"]["name"]
        new = dict(node)
        status = dict(node.get("status") or {})
        status["conditions"] = node_conditions(metautil.now_rfc3339(), True, status.get("conditions"))
        if capacity is not None:
            status["capacity"] = capacity
            status["allocatable"] = dict(capacity)
        new["status"] = status
        try:
            await self.client.nodes.update_status(new)
        except StatusError as e:
            if e.code == 409:
                self.node_controller.enqueue_after(name, 0.5)
            elif e.code != 404:
                raise

    async def _renew_lease(self, name: str, node: Obj | None = None) -> None:
        leases = self.client.leases
        lease = self._leases.get(name)
        now = metautil.now_rfc3339_micro()
        if lease is not None:
            new = dict(lease)
            new["spec"] = dict(lease.get("spec") or {}, renewTime=now)
            try:
                self._leases[name] = await leases.update(new, namespace=LEASE_NAMESPACE)
                return
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
        try:
            cur = await leases.get(name, namespace=LEASE_NAMESPACE)
            cur["spec"] = dict(cur.get("spec") or {}, renewTime=now, holderIdentity=name,
                               leaseDurationSeconds=LEASE_DURATION)
            self._leases[name] = await leases.update(cur, namespace=LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            node = node or self.node_informer.store.get(None, name)
            meta: Obj = {"name": name, "namespace": LEASE_NAMESPACE}
            if node is not None and node.get("metadata", {}).get("uid"):
                meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                            "uid": node["metadata"]["uid"]}]
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": now}}
            try:
                self._leases[name] = await leases.create(body, namespace=LEASE_NAMESPACE)
            except StatusError as e2:
                if e2.code != 409:
                    raise

    async def _in_batches(self, names: list[str], period: float, fn: Any) -> None:
        """Run fn(name) for every name, spread evenly over `period` in batches of at most 100."""
        if not names:
            await asyncio.sleep(period)
            return
        batches = [names[i:i + 100] for i in range(0, len(names), 100)]
        gap = period / len(batches)
        for batch in batches:
            t = time.monotonic()
            results = await asyncio.gather(*(fn(n) for n in batch if n in self.alive), return_exceptions=True)
            for r in results:
                if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                    log.warning("simulated nodes: heartbeat failed: %s", r)
            await asyncio.sleep(max(0.0, gap - (time.monotonic() - t)))

    async def _renew_leases(self) -> None:
        """NodeLease heartbeats: renewTime every 10 s (a quarter of the 40 s lease)."""
        while True:
            await self._in_batches(sorted(self.alive), LEASE_RENEW_INTERVAL, self._renew_lease)

    async def _report_status(self) -> None:
        """Node status every minute: conditions' lastHeartbeatTime (upstream reports on change or
        every nodeStatusReportFrequency)."""
        await asyncio.sleep(NODE_STATUS_INTERVAL)

        async def post(name: str) -> None:
            node = self.node_informer.store.get(None, name)
            if node is not None:
                await self._post_status(node)

        while True:
            await self._in_batches(sorted(self.alive), NODE_STATUS_INTERVAL, post)

    # -- pods --------------------------------------------------------------------------------------

    def _allocate_pod_ip(self, node_name: str, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self._node_ips.get(node_name, "")
        existing = (pod.get("status") or {}).get("podIP")
        cidr = self._cidrs.get(node_name)
        if not cidr:
            return ""
        net = ipaddress.ip_network(cidr)
        used = self._pod_ips.setdefault(node_name, set())
        if existing:
            try:
                off = int(ipaddress.ip_address(existing)) - int(net.network_address)
                if 0 < off < net.num_addresses:
                    used.add(off)
                    return existing
            except ValueError:
                pass
        for off in range(2, net.num_addresses - 1):  # .1 is the node's bridge, as with the bridge CNI
            if off not in used:
                used.add(off)
                return str(net.network_address + off)
        return ""

    def _release(self, uid: str, node_name: str) -> None:
        clock = self._clocks.pop(uid, None)
        self._deleting.pop(uid, None)
        if clock is None or not clock.ip:
            return
        cidr = self._cidrs.get(node_name)
        used = self._pod_ips.get(node_name)
        if cidr and used is not None:
            try:
                used.discard(int(ipaddress.ip_address(clock.ip)) - int(ipaddress.ip_network(cidr).network_address))
            except ValueError:
                pass

    async def _sync_pod(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        pod = self.pod_informer.store.get(ns, name)
        if pod is None:
            uid = self._uid_by_key.pop(key, "")
            clock = self._clocks.get(uid)
            if clock is not None:
                self._release(uid, clock.node)
            return None
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid, node_name = meta.get("uid", ""), spec.get("nodeName") or ""
        if node_name not in self.alive:
            return None
        clock = self._clocks.get(uid)
        if clock is None:
            started = metautil.parse_time((pod.get("status") or {}).get("startTime"))
            clock = PodClock(seen_at=started or time.time(), key=key, node=node_name)
            clock.ip = self._allocate_pod_ip(node_name, pod)
            self._clocks[uid] = clock
            self._uid_by_key[key] = uid
        phase = (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp"):
            return await self._finish_deletion(pod, uid, node_name)
        if phase in ("Succeeded", "Failed"):
            self._release(uid, node_name)
            self._clocks[uid] = clock  # keep the clock (and no IP) so a re-sync does not restart it
            clock.ip = ""
            return None
        rv = meta.get("resourceVersion", "")
        if rv and rv == clock.patched_from_rv:
            # our last patch is not in the cache yet: computing from this stale status would send it
            # again (with new transition times). The watch event of that patch requeues the pod; the
            # delay is a fallback should the server have found nothing to change (then no event comes,
            # and after it the cached status is the current one)
            left = clock.patched_at + PATCH_VISIBLE_WITHIN - time.monotonic()
            if left > 0:
                return left
            clock.patched_from_rv = ""
        host_ip = self._node_ips.get(node_name, "")
        status, nxt = desired_status(pod, clock, time.time(), host_ip, self.settings)
        old = pod.get("status") or {}
        # compared without null members on both sides (a merge patch drops them, a pod's conditions
        # keep lastProbeTime: null): a status differing only by them would be patched for no change
        if any(_without_nulls(old.get(k)) != _without_nulls(v) for k, v in status.items()):
            # a patch, as the kubelet's status manager sends: no resourceVersion, so a lagging cache
            # cannot make thousands of pods retry conflicts; the uid guards against a recreated pod
            patch = {"metadata": {"uid": uid}, "status": {**{k: None for k in old if k not in status}, **status}}
            try:
                await self.client.pods.patch(name, patch, "merge", namespace=ns, subresource="status")
            except StatusError as e:
                if e.code in (404, 409):  # gone, or recreated under the same name
                    return None
                raise
            clock.patched_from_rv, clock.patched_at = rv, time.monotonic()
            images = self._images.setdefault(node_name, set())
            self._record(node_name, pod, simulated_events.container_events(pod, old, status, images))
        return nxt

    def _record(self, node_name: str, pod: Obj, events: list[tuple[str, str, str]]) -> None:
        if not events:
            return
        recorder = self._recorders.get(node_name)
        if recorder is None:
            recorder = self._recorders[node_name] = EventRecorder(self.client, "kubelet", node_name,
                                                                  self._event_limiter)
        for event_type, reason, message in events:
            recorder.event(pod, event_type, reason, message)

    async def _finish_deletion(self, pod: Obj, uid: str, node_name: str) -> float | None:
        """Honour a graceful deletion: stop the containers (at most stop_delay), then delete for good."""
        meta = pod["metadata"]
        if uid not in self._deleting:
            self._record(node_name, pod, simulated_events.killing_events(pod))
        seen = self._deleting.setdefault(uid, time.monotonic())
        grace = meta.get("deletionGracePeriodSeconds")
        wait = min(float(grace if grace is not None else 30), self.settings.stop_delay)
        left = seen + wait - time.monotonic()
        if left > 0:
            return left
        try:
            await self.client.pods.delete(meta["name"], namespace=meta.get("namespace"), grace_period_seconds=0,
                                          preconditions={"uid": uid})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        self._release(uid, node_name)
        return None
