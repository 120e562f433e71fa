"""The Node object this kubelet owns: registration (capacity from the host, addresses, nodeInfo
with the runtime's version, a /24 podCIDR), the status loop and the kube-node-lease heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import platform
from datetime import UTC, datetime
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.runtime import node_events

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.32.0+kubelite"
LEASE_NAMESPACE = "kube-node-lease"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def host_capacity(root_dir: str, max_pods: int) -> dict[str, str]:
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        st = os.statvfs(root_dir)
        disk_kib = st.f_blocks * st.f_frsize // 1024
    except OSError:
        disk_kib = 0
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "ephemeral-storage": f"{disk_kib}Ki",
            "hugepages-1Gi": "0", "hugepages-2Mi": "0", "pods": str(max_pods)}


def node_info(runtime_version: str) -> dict[str, str]:
    os_image = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "machineID": _read("/etc/machine-id"),
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_image or "Linux",
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": arch,
    }


async def allocate_pod_cidr(client: Any, node_name: str, cluster_cidr: str) -> str:
    """This node's podCIDR: the one it already has, else the first free /24 of the cluster CIDR."""
    nodes = (await client.nodes.list()).get("items") or []
    used = set()
    for n in nodes:
        cidr = (n.get("spec") or {}).get("podCIDR")
        if n["metadata"]["name"] == node_name and cidr:
            return cidr
        if cidr:
            used.add(cidr)
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    prefix = 24 if net.prefixlen <= 24 else net.prefixlen
    for sub in net.subnets(new_prefix=prefix):
        if str(sub) not in used:
            return str(sub)
    raise RuntimeError(f"no free /{prefix} left in the cluster CIDR {cluster_cidr}")


class NodeStatusManager:
    def __init__(self, client: Any, *, name: str, node_ip: str, pod_cidr: str, capacity: dict[str, str],
                 runtime_version: str, kubelet_port: int, runtime: Any, update_frequency: float = 10.0,
                 lease_duration: int = 40, recorder: Any = None):
        self.client = client
        self.recorder = recorder
        self.name = name
        self.node_ip = node_ip
        self.pod_cidr = pod_cidr
        self.capacity = capacity
        self.runtime_version = runtime_version
        self.kubelet_port = kubelet_port
        self.runtime = runtime
        self.update_frequency = update_frequency
        self.lease_duration = lease_duration
        self._tasks: list[asyncio.Task] = []
        self._last_status: dict | None = None
        self._last_write = 0.0
        self.uid = ""

    def node_object(self) -> dict:
        import socket

        arch = node_info("")["architecture"]
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
                           "beta.kubernetes.io/arch": arch,
                           "node-role.kubernetes.io/control-plane": "true"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                                "kubelite.io/hostname": socket.gethostname()},
            },
            "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
        }

    async def images(self) -> list[dict]:
        try:
            imgs = await self.runtime.list_images()
        except Exception:
            return []
        out = [{"names": list(i.repo_digests) + list(i.repo_tags), "sizeBytes": int(i.size)} for i in imgs]
        out.sort(key=lambda x: -x["sizeBytes"])
        return out[:50]

    async def status(self, old: dict | None) -> dict:
        prev = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}
        now = _now()

        def cond(t: str, s: str, reason: str, message: str) -> dict:
            p = prev.get(t) or {}
            return {"type": t, "status": s, "lastHeartbeatTime": now,
                    "lastTransitionTime": p.get("lastTransitionTime") if p.get("status") == s else now,
                    "reason": reason, "message": message}

        return {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": node_info(self.runtime_version),
            "images": await self.images(),
        }

    async def register(self) -> None:
        try:
            node = await self.client.nodes.create(self.node_object())
        except StatusError as e:
            if e.code != 409:
                raise
            node = await self.client.nodes.get(self.name)
            want = self.node_object()
            patch: dict = {"metadata": {"labels": want["metadata"]["labels"]}}
            if not (node.get("spec") or {}).get("podCIDR"):
                patch["spec"] = want["spec"]
            node = await self.client.nodes.patch(self.name, patch, "merge")
        self.uid = node["metadata"].get("uid", "")
        self._record([node_events.STARTING])
        await self.update_status(force=True)
        self._record([node_events.ALLOCATABLE_ENFORCED])
        log.info("node %s registered (podCIDR %s, InternalIP %s)", self.name, self.pod_cidr, self.node_ip)

    async def update_status(self, force: bool = False) -> None:
        node = await self.client.nodes.get(self.name)
        status = await self.status(node.get("status"))
        loop = asyncio.get_running_loop()
        changed = self._last_status is None or _strip_times(status) != _strip_times(self._last_status)
        # like upstream: report when something changed, else every nodeStatusReportFrequency (1 min)
        if force or changed or loop.time() - self._last_write > 60:
            await self.client.nodes.patch(self.name, {"status": status}, "merge", subresource="status")
            self._last_status = status
            self._last_write = loop.time()
            self._record(node_events.condition_events(self.name, (node.get("status") or {}).get("conditions"),
                                                      status["conditions"]))

    def _record(self, events: list[tuple[str, str, str]]) -> None:
        if self.recorder is not None:
            for event_type, reason, message in events:
                self.recorder.event(node_events.node_reference(self.name), event_type, reason, message)

    async def renew_lease(self) -> None:
        leases = self.client.leases
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                  "uid": self.uid}] if self.uid else []},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_duration,
                         "renewTime": _micro_now()}}
        try:
            await leases.patch(self.name, {"spec": body["spec"]}, "merge", LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            try:
                await leases.create(body, LEASE_NAMESPACE)
            except StatusError as e2:
                if e2.code == 404:  # the namespace is missing
                    with contextlib.suppress(StatusError):
                        await self.client.namespaces.create({"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": LEASE_NAMESPACE}})
                    await leases.create(body, LEASE_NAMESPACE)
                elif e2.code != 409:
                    raise

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(self.renew_lease, self.update_frequency), name="node-lease"),
                       loop.create_task(self._loop(self.update_status, self.update_frequency), name="node-status")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self, fn, period: float) -> None:
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node %s: %s failed: %s", self.name, getattr(fn, "__name__", fn), e)
            await asyncio.sleep(period)


def _strip_times(status: dict) -> list:
    return [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []] + [
        {k: v for k, v in status.items() if k != "conditions"}]
