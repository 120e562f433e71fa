"""The local-path provisioner k3s ships (rancher/local-path-provisioner), as a controller.

It serves claims the PersistentVolume controller handed to `rancher.io/local-path` (the
volume.kubernetes.io/storage-provisioner annotation) once the scheduler has chosen their node
(volume.kubernetes.io/selected-node): it creates a PersistentVolume `pvc-<uid>` pre-bound to the
claim, a `hostPath` (DirectoryOrCreate) at `<data-dir>/storage/pvc-<uid>_<ns>_<name>` with node
affinity to that node, and the PV controller binds the two. A Released volume whose reclaim policy
is Delete is removed, with its directory on a real node of this host (k3s runs a helper pod on the
node for that; here the node's directory is local to the controller manager). Simulated nodes get
volumes too, with no directory behind them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, meta_namespace_key, split_meta_namespace_key
from kubelite.controllers import pvutil

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PROVISIONER = "rancher.io/local-path"
ANN_PROVISIONER_SELECTED_NODE = "local.path.provisioner/selected-node"
NODE_KEY = "kubernetes.io/hostname"
SIMULATED_LABEL = "kubelite.io/simulated"


def volume_path(storage_dir: str, pvc: Obj) -> str:
    meta = pvc["metadata"]
    return os.path.join(storage_dir, f"pvc-{meta['uid']}_{meta['namespace']}_{meta['name']}")


def _make_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)  # as the provisioner's setup script: any container user may write


class LocalPathProvisioner:
    def __init__(self, client: Any, factory: SharedInformerFactory, storage_dir: str, workers: int = 2):
        self.storage_dir = storage_dir
        self.pvs = client.resource("", "v1", "persistentvolumes")
        self.pvc_informer = factory.informer("", "v1", "persistentvolumeclaims")
        self.pv_informer = factory.informer("", "v1", "persistentvolumes")
        self.class_informer = factory.informer("storage.k8s.io", "v1", "storageclasses")
        self.node_informer = factory.informer("", "v1", "nodes")
        identity = f"{PROVISIONER}_{socket.gethostname()}_{uuid.uuid4()}"
        self.recorder = EventRecorder(client, identity)
        self.controller = Controller("local-path-provisioner", self.sync, workers=workers)
        self.controller.watch(self.pvc_informer, self._claim_key)
        self.controller.watch(self.pv_informer, self._volume_key)

    @staticmethod
    def _claim_key(pvc: Obj) -> str | None:
        ann = pvc["metadata"].get("annotations") or {}
        if PROVISIONER not in (ann.get(pvutil.ANN_STORAGE_PROVISIONER), ann.get(pvutil.ANN_BETA_STORAGE_PROVISIONER)):
            return None
        return "pvc:" + meta_namespace_key(pvc)

    @staticmethod
    def _volume_key(pv: Obj) -> str | None:
        ann = pv["metadata"].get("annotations") or {}
        if ann.get(pvutil.ANN_DYNAMICALLY_PROVISIONED) != PROVISIONER:
            return None
        return "pv:" + pv["metadata"]["name"]

    async def sync(self, key: str) -> float | None:
        kind, _, rest = key.partition(":")
        if kind == "pv":
            return await self.sync_volume(rest)
        return await self.sync_claim(rest)

    # ----------------------------------------------------------------------------- provisioning
    async def sync_claim(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        pvc = self.pvc_informer.store.get(ns, name)
        if pvc is None or pvc["metadata"].get("deletionTimestamp") or (pvc.get("spec") or {}).get("volumeName"):
            return None
        ann = pvc["metadata"].get("annotations") or {}
        if self._claim_key(pvc) is None:
            return None
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        if self.pv_informer.store.get(None, pv_name) is not None:
            return None
        node_name = ann.get(pvutil.ANN_SELECTED_NODE)
        if not node_name:
            return None  # k3s's provisioner needs a node: the class waits for the first consumer
        claim_ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", **pvc}
        cls_name = pvutil.claim_class(pvc)
        sc = self.class_informer.store.get(None, cls_name)
        if sc is None:
            self.recorder.event(claim_ref, "Warning", "ProvisioningFailed",
                                f'failed to provision volume: storageclass.storage.k8s.io "{cls_name}" not found')
            return None
        if sc.get("provisioner") != PROVISIONER:
            return None
        node = self.node_informer.store.get(None, node_name)
        if node is None:
            self.recorder.event(claim_ref, "Warning", "ProvisioningFailed",
                                f'failed to get target node: nodes "{node_name}" not found')
            return 5.0
        self.recorder.event(claim_ref, "Normal", "Provisioning",
                            f'External provisioner is provisioning volume for claim "{ns}/{name}"')
        path = volume_path(self.storage_dir, pvc)
        if not self._simulated(node):
            await asyncio.to_thread(_make_dir, path)
        spec = pvc.get("spec") or {}
        node_value = (node["metadata"].get("labels") or {}).get(NODE_KEY) or node_name
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {pvutil.ANN_DYNAMICALLY_PROVISIONED: PROVISIONER,
                                                          ANN_PROVISIONER_SELECTED_NODE: node_name}},
            "spec": {
                "claimRef": pvutil.claim_ref(pvc),
                "storageClassName": cls_name,
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "accessModes": list(spec.get("accessModes") or []),
                "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
                "volumeMode": "Filesystem",
                "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": NODE_KEY, "operator": "In", "values": [node_value]}]}]}},
            },
        }
        try:
            await self.pvs.create(pv)
        except StatusError as e:
            if e.code != 409:
                self.recorder.event(claim_ref, "Warning", "ProvisioningFailed",
                                    f"failed to provision volume with StorageClass \"{cls_name}\": {e.message}")
                raise
            return None
        self.recorder.event(claim_ref, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        return None

    def _simulated(self, node: Obj) -> bool:
        return (node["metadata"].get("labels") or {}).get(SIMULATED_LABEL) == "true"

    # ----------------------------------------------------------------------------- deleting
    async def sync_volume(self, name: str) -> float | None:
        pv = self.pv_informer.store.get(None, name)
        if pv is None or pv["metadata"].get("deletionTimestamp"):
            return None
        spec = pv.get("spec") or {}
        if (pv.get("status") or {}).get("phase") != "Released" or spec.get("persistentVolumeReclaimPolicy") != "Delete":
            return None
        path = (spec.get("hostPath") or {}).get("path") or ""
        node_name = (pv["metadata"].get("annotations") or {}).get(ANN_PROVISIONER_SELECTED_NODE) or ""
        node = self.node_informer.store.get(None, node_name) if node_name else None
        inside = os.path.dirname(os.path.abspath(path)) == os.path.abspath(self.storage_dir)
        if path and inside and (node is None or not self._simulated(node)):
            await asyncio.to_thread(shutil.rmtree, path, True)
        try:
            await self.pvs.delete(name, preconditions={"uid": pv["metadata"]["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        return None

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
