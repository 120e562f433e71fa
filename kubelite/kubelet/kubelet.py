"""The kubelet: runs the pods bound to this node as containers through CRI.

Assembly, in upstream's order: runtime (the given CRI endpoint or a private containerd), the pod
network (CNI conflist for the node's podCIDR), the HTTPS server, node registration and lease,
then the pod informer (spec.nodeName == this node) feeding one worker per pod, and a PLEG-style
relist every second that wakes the workers of pods whose containers changed state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from typing import Any

from kubelite.client import EventRecorder, SharedInformerFactory
from kubelite.kubelet import cni
from kubelite.kubelet.config import KubeletConfig
from kubelite.kubelet.images import ImageManager
from kubelite.kubelet.node import NodeStatusManager, allocate_pod_cidr, host_capacity
from kubelite.kubelet.pod_workers import PodWorkers
from kubelite.kubelet.probes import ProbeManager
from kubelite.kubelet.server import KubeletServer, ensure_serving_cert
from kubelite.kubelet.sync import L_POD_NAME, L_POD_NAMESPACE, L_POD_UID, PodSyncer
from kubelite.kubelet.volumes import VolumeManager
from kubelite.runtime import images as node_images
from kubelite.runtime.cri import RuntimeClient
from kubelite.runtime.cri.containerd import Containerd
from kubelite.runtime.requirements import missing_requirements

log = logging.getLogger(__name__)


class NodeUnavailable(Exception):
    """This host cannot run a node (not root, containerd/runc/CNI missing); the message says why."""


class Kubelet:
    def __init__(self, client: Any, config: KubeletConfig):
        self.client = client
        self.config = config
        self.containerd: Containerd | None = None
        self.runtime: RuntimeClient | None = None
        self.server: KubeletServer | None = None
        self.node: NodeStatusManager | None = None
        self.factory: SharedInformerFactory | None = None
        self.pod_informer: Any = None
        self.syncer: PodSyncer | None = None
        self.workers = PodWorkers(self._sync)
        self.probes: ProbeManager | None = None
        self.recorder = EventRecorder(client, "kubelet", config.node_name)
        self._uid_key: dict[str, str] = {}
        self._gone: dict[str, dict] = {}  # uid -> last known pod, for pods deleted from the API
        self._tasks: list[asyncio.Task] = []
        self.node_ip = ""

    # ---- lookups used by the server ----------------------------------------------------------

    def get_pod(self, namespace: str, name: str) -> dict | None:
        return self.pod_informer.store.get(namespace, name) if self.pod_informer else None

    def pods(self) -> list[dict]:
        return self.pod_informer.store.list() if self.pod_informer else []

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        problems = missing_requirements(cfg.cni_bin_dir, need_containerd=not cfg.container_runtime_endpoint)
        if problems:
            raise NodeUnavailable("; ".join(problems))
        from kubelite.apiserver.pki import primary_ip

        self.node_ip = cfg.node_ip or primary_ip() or "127.0.0.1"
        os.makedirs(cfg.root_dir, mode=0o711, exist_ok=True)
        pod_cidr = await allocate_pod_cidr(self.client, cfg.node_name, cfg.cluster_cidr)
        _remove_broken_bridge(cfg.cni_bridge)
        cni.write_conflist(cfg.cni_conf_dir, bridge=cfg.cni_bridge, subnet=pod_cidr, ipam_dir=cfg.cni_ipam_dir)
        cni.enable_forwarding()
        try:
            await asyncio.to_thread(cni.ensure_masquerade, cfg.cni_bridge, pod_cidr)
        except OSError as e:  # pods still reach each other; only traffic leaving the node is affected
            log.warning("pod network masquerade rules not written: %s", e)
        endpoint = cfg.container_runtime_endpoint
        if endpoint and cfg.insecure_registries:
            log.warning("--insecure-registry applies to the private containerd only; configure %s's registry "
                        "hosts yourself", endpoint)
        if not endpoint:
            self.containerd = Containerd(cfg.containerd_dir, sandbox_image=cfg.pause_image,
                                         cni_bin_dir=cfg.cni_bin_dir, cni_conf_dir=cfg.cni_conf_dir,
                                         insecure_registries=cfg.insecure_registries)
            await self.containerd.start()
            endpoint = self.containerd.endpoint
        self.runtime = RuntimeClient(endpoint)
        version = await self.runtime.version(timeout=10)
        runtime_version = f"{version.runtime_name}://{version.runtime_version}"
        # imported beside the node's registration (a fresh node has none): pods' sandboxes wait for it
        pause = asyncio.get_running_loop().create_task(self._ensure_pause_image(endpoint), name="kubelet-pause-image")
        self._tasks.append(pause)

        cert, key = ensure_serving_cert(cfg.tls_dir, os.path.join(cfg.root_dir, "tls"), cfg.node_name,
                                        [self.node_ip])
        self.server = KubeletServer(self, self.runtime, bind=cfg.bind, port=cfg.port, cert=cert, key=key,
                                    ca=os.path.join(cfg.tls_dir, "ca.crt"))
        port = await self.server.start()

        capacity = host_capacity(cfg.root_dir, cfg.max_pods)
        self.node = NodeStatusManager(self.client, name=cfg.node_name, node_ip=self.node_ip, pod_cidr=pod_cidr,
                                      capacity=capacity, runtime_version=runtime_version, kubelet_port=port,
                                      runtime=self.runtime, update_frequency=cfg.node_status_update_frequency,
                                      lease_duration=cfg.lease_duration_seconds, recorder=self.recorder)
        await self.node.register()
        self.node.start()

        self.factory = SharedInformerFactory(self.client)
        self.pod_informer = self.factory.informer("", "v1", "pods", field_selector=f"spec.nodeName={cfg.node_name}")
        services = self.factory.informer("", "v1", "services")
        self.probes = ProbeManager(self.runtime, self.recorder, self.workers.wake)
        from kubelite.api.kinds.common import parse_quantity

        self.syncer = PodSyncer(client=self.client, runtime=self.runtime, config=cfg, recorder=self.recorder,
                                images=ImageManager(self.runtime, self.recorder),
                                volumes=VolumeManager(self.client, cfg.pods_dir, cfg.cluster_domain), probes=self.probes,
                                node_ip=self.node_ip, runtime_name=version.runtime_name, allocatable=capacity,
                                memory_capacity=int(parse_quantity(capacity["memory"])), services=services)
        self.syncer.sandbox_image_ready = pause
        self.pod_informer.add_handler(on_add=self._on_pod, on_update=self._on_pod_update,
                                      on_delete=self._on_pod_deleted)
        await self.factory.start()
        await self.factory.wait_for_sync(30)
        self._tasks.append(asyncio.get_running_loop().create_task(self._pleg(), name="kubelet-pleg"))
        log.info("kubelet on node %s: %s, pods %s via %s, server :%d", cfg.node_name, runtime_version, pod_cidr,
                 cfg.cni_bridge, port)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.workers.stop()
        if self.probes is not None:
            await self.probes.stop()
        if self.factory is not None:
            await self.factory.stop()
        if self.node is not None:
            await self.node.stop()
        if self.server is not None:
            await self.server.stop()
        if self.runtime is not None:
            await self.runtime.close()
        if self.containerd is not None:
            await self.containerd.stop()

    async def _ensure_pause_image(self, endpoint: str) -> None:
        """The sandbox image must be on the node (no registry): build kubelite's own if missing. Never
        raises: a failure is logged, and sandboxes then fail as containerd reports."""
        try:
            await self._import_pause_image(endpoint)
        except Exception:
            log.exception("importing the sandbox image %s failed", self.config.pause_image)

    async def _import_pause_image(self, endpoint: str) -> None:
        cfg = self.config
        if await self.runtime.image_status(cfg.pause_image) is not None:
            return
        if cfg.pause_image != node_images.PAUSE_IMAGE:
            log.warning("sandbox image %s is not on the node; containerd will try to pull it", cfg.pause_image)
            return
        path = os.path.join(cfg.root_dir, "images", "pause.tar")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        await asyncio.to_thread(node_images.build_pause_image, path, cfg.pause_image)
        await node_images.import_image_async(node_images.socket_path(endpoint), path)
        log.info("imported the sandbox image %s", cfg.pause_image)

    # ---- pods -----------------------------------------------------------------------------------

    def _on_pod(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        self._uid_key[uid] = f"{meta.get('namespace')}/{meta.get('name')}"
        self._gone.pop(uid, None)
        self.workers.wake(uid)

    def _on_pod_update(self, old: dict, new: dict) -> None:
        """Our own status writes come back as updates: they need no sync (else every write would
        trigger another, and e.g. ErrImagePull would turn into ImagePullBackOff at once)."""
        om, nm = old.get("metadata") or {}, new.get("metadata") or {}
        if (old.get("spec") != new.get("spec") or om.get("uid") != nm.get("uid")
                or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
                or om.get("labels") != nm.get("labels") or om.get("annotations") != nm.get("annotations")):
            self._on_pod(new)

    def _on_pod_deleted(self, pod: dict) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        self._gone[uid] = pod
        self.workers.wake(uid)

    async def _sync(self, uid: str) -> float | None:
        key = self._uid_key.get(uid)
        pod = self.pod_informer.store.get_by_key(key) if key else None
        if pod is not None and pod["metadata"].get("uid") == uid:
            return await self.syncer.sync(pod)
        gone = self._gone.pop(uid, None) or {"metadata": {"uid": uid, "name": "", "namespace": ""}, "spec": {}}
        await self.syncer.remove(gone)
        self._uid_key.pop(uid, None)
        self.workers.forget(uid)
        return None

    async def _pleg(self) -> None:
        """Relist containers and sandboxes; wake the pods whose runtime state changed; remove orphans."""
        last: dict[str, tuple[int, str]] = {}
        while True:
            try:
                containers = await self.runtime.list_containers()
                sandboxes = await self.runtime.list_pod_sandbox()
                now: dict[str, tuple[int, str]] = {}
                for c in containers:
                    now["c" + c.id] = (c.state, c.labels.get(L_POD_UID, ""))
                for s in sandboxes:
                    now["s" + s.id] = (s.state, s.labels.get(L_POD_UID, ""))
                changed = {v[1] for k, v in now.items() if last.get(k) != v}
                changed |= {v[1] for k, v in last.items() if k not in now}
                last = now
                known = set(self._uid_key)
                for uid in changed:
                    if uid and uid in known:
                        self.workers.wake(uid)
                for s in sandboxes:
                    uid = s.labels.get(L_POD_UID, "")
                    if uid and uid not in known and uid not in self.workers.uids():
                        self._gone[uid] = {"metadata": {"uid": uid, "name": s.labels.get(L_POD_NAME, ""),
                                                        "namespace": s.labels.get(L_POD_NAMESPACE, "")},
                                           "spec": {"terminationGracePeriodSeconds": 2}}
                        self.workers.wake(uid)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("PLEG relist failed: %s", e)
            await asyncio.sleep(self.config.pleg_relist_period)


def _remove_broken_bridge(bridge: str) -> None:
    """A bridge left with an all-zero MAC (no ports, after a failed CNI ADD) breaks the bridge
    plugin ("could not set bridge's mac"): delete it, CNI recreates it."""
    try:
        with open(f"/sys/class/net/{bridge}/address") as f:
            mac = f.read().strip()
        with open(f"/sys/class/net/{bridge}/brif/../bridge/root_id") as f:
            f.read()
    except OSError:
        return
    ports = os.listdir(f"/sys/class/net/{bridge}/brif") if os.path.isdir(f"/sys/class/net/{bridge}/brif") else []
    if mac == "00:00:00:00:00:00" and not ports:
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
