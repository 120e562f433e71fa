"""PersistentVolumeController (upstream pkg/controller/volume/persistentvolume): binds claims to volumes.

Watches PersistentVolumes, PersistentVolumeClaims and StorageClasses; keys are `pv:<name>` and
`pvc:<ns>/<name>` (upstream's volume and claim queues, on one work queue). syncClaim binds an unbound
claim to its pre-bound or smallest matching Available volume, waits for the first consumer
(WaitForFirstConsumer classes, until the scheduler sets volume.kubernetes.io/selected-node), or hands
it to the class's external provisioner (the storage-provisioner annotations, ExternalProvisioning).
syncVolume moves volumes between Available, Bound and Released and, once released, reclaims them:
Retain keeps them, Delete of a provisioned volume is its provisioner's job, any other Delete fails.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, meta_namespace_key, split_meta_namespace_key
from kubelite.controllers import pvutil
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAME = "persistentvolume-binder-controller"
COMPONENT = "persistentvolume-controller"


def _index_claim_ref(pv: Obj) -> str | None:
    ref = (pv.get("spec") or {}).get("claimRef")
    if isinstance(ref, dict) and ref.get("name"):
        return f"{ref.get('namespace') or ''}/{ref['name']}"
    return None


class PersistentVolumeController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.pvs = client.resource("", "v1", "persistentvolumes")
        self.pvcs = client.resource("", "v1", "persistentvolumeclaims")
        self.pv_informer = factory.informer("", "v1", "persistentvolumes")
        self.pvc_informer = factory.informer("", "v1", "persistentvolumeclaims")
        self.class_informer = factory.informer("storage.k8s.io", "v1", "storageclasses")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.pv_informer.store.add_index("claimRef", _index_claim_ref)
        self.recorder = EventRecorder(client, COMPONENT)
        self.controller = Controller(NAME, self.sync, workers=workers)
        self.controller.watch(self.pv_informer, lambda pv: "pv:" + pv["metadata"]["name"])
        self.controller.watch(self.pvc_informer, lambda pvc: "pvc:" + meta_namespace_key(pvc))
        self.class_informer.add_handler(self._class_changed, lambda _o, n: self._class_changed(n))

    def _class_changed(self, sc: Obj) -> None:
        """A new class may let pending claims of that class be provisioned."""
        name = sc["metadata"]["name"]
        for pvc in self.pvc_informer.store.list():
            if (pvc.get("status") or {}).get("phase") == "Pending" and pvutil.claim_class(pvc) == name:
                self.controller.enqueue("pvc:" + meta_namespace_key(pvc))

    async def sync(self, key: str) -> float | None:
        kind, _, rest = key.partition(":")
        if kind == "pv":
            return await self.sync_volume(rest)
        return await self.sync_claim(rest)

    # ------------------------------------------------------------------------------ claims
    @requeue_on_conflict
    async def sync_claim(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        pvc = self.pvc_informer.store.get(ns, name)
        if pvc is None:
            # the claim is gone: its volume is released
            for pv in self.pv_informer.store.by_index("claimRef", key):
                self.controller.enqueue("pv:" + pv["metadata"]["name"])
            return None
        if (pvc["metadata"].get("annotations") or {}).get(pvutil.ANN_BIND_COMPLETED):
            return await self._sync_bound_claim(pvc)
        return await self._sync_unbound_claim(pvc)

    async def _sync_unbound_claim(self, pvc: Obj) -> float | None:
        spec = pvc.get("spec") or {}
        volume_name = spec.get("volumeName") or ""
        if not volume_name:
            delay = pvutil.is_delay_binding(pvc, self.class_informer.store)
            pv = pvutil.find_matching_volume(pvc, self.pv_informer.store.list(), delay_binding=delay)
            if pv is not None:
                await self._bind(pv, pvc)
                return None
            ann = pvc["metadata"].get("annotations") or {}
            if delay and not ann.get(pvutil.ANN_SELECTED_NODE):
                self._claim_event(pvc, "Normal", "WaitForFirstConsumer",
                                  "waiting for first consumer to be created before binding")
                await self._claim_phase(pvc, "Pending")
                return None
            cls_name = pvutil.claim_class(pvc)
            if cls_name:
                await self._provision(pvc, cls_name)
            else:
                self._claim_event(pvc, "Normal", "FailedBinding",
                                  "no persistent volumes available for this claim and no storage class is set")
            await self._claim_phase(pvc, "Pending")
            return None
        pv = self.pv_informer.store.get(None, volume_name)
        if pv is None:
            await self._claim_phase(pvc, "Pending")  # requested volume does not exist yet
            return None
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or pvutil.is_bound_to_claim(pv, pvc):
            problem = self._mismatch(pvc, pv)
            if problem:
                self._claim_event(pvc, "Warning", "VolumeMismatch",
                                  f"Cannot bind to requested volume \"{volume_name}\": {problem}")
                await self._claim_phase(pvc, "Pending")
                return None
            await self._bind(pv, pvc)
            return None
        self._claim_event(pvc, "Warning", "FailedBinding", f"volume \"{volume_name}\" already bound to a different claim.")
        await self._claim_phase(pvc, "Pending")
        return None

    @staticmethod
    def _mismatch(pvc: Obj, pv: Obj) -> str:
        """checkVolumeSatisfyClaim, worded as upstream."""
        if pvutil.volume_capacity(pv) < pvutil.requested_storage(pvc):
            return "requested PV is too small"
        if pvutil.volume_class(pv) != pvutil.claim_class(pvc):
            return "storageClassName does not match"
        if ((pv.get("spec") or {}).get("volumeMode") or "Filesystem") != \
                ((pvc.get("spec") or {}).get("volumeMode") or "Filesystem"):
            return "incompatible volumeMode"
        if not pvutil.check_access_modes(pvc, pv):
            return "incompatible accessMode"
        return ""

    async def _sync_bound_claim(self, pvc: Obj) -> float | None:
        volume_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if not volume_name:
            await self._claim_lost(pvc, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return None
        pv = self.pv_informer.store.get(None, volume_name)
        if pv is None:
            await self._claim_lost(pvc, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return None
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or pvutil.is_bound_to_claim(pv, pvc):
            await self._bind(pv, pvc)
            return None
        self._claim_event(pvc, "Warning", "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")
        await self._claim_phase(pvc, "Lost")
        return None

    async def _claim_lost(self, pvc: Obj, message: str) -> None:
        if (pvc.get("status") or {}).get("phase") != "Lost":
            self._claim_event(pvc, "Warning", "ClaimLost", message)
            await self._claim_phase(pvc, "Lost")

    async def _provision(self, pvc: Obj, cls_name: str) -> None:
        """provisionClaim for an external provisioner: annotate the claim with who should provision."""
        sc = self.class_informer.store.get(None, cls_name)
        if sc is None:
            self._claim_event(pvc, "Warning", "ProvisioningFailed",
                              f'storageclass.storage.k8s.io "{cls_name}" not found')
            return
        provisioner = sc.get("provisioner") or ""
        if provisioner == pvutil.NO_PROVISIONER:
            self._claim_event(pvc, "Normal", "FailedBinding",
                              "no persistent volumes available for this claim and no storage class is set"
                              if not cls_name else "no persistent volumes available for this claim")
            return
        ann = pvc["metadata"].get("annotations") or {}
        if ann.get(pvutil.ANN_STORAGE_PROVISIONER) != provisioner or \
                ann.get(pvutil.ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            fresh = metautil.deep_copy(pvc)
            fa = fresh["metadata"].setdefault("annotations", {})
            fa[pvutil.ANN_STORAGE_PROVISIONER] = provisioner
            fa[pvutil.ANN_BETA_STORAGE_PROVISIONER] = provisioner
            pvc = await self.pvcs.update(fresh, namespace=pvc["metadata"]["namespace"])
        self._claim_event(pvc, "Normal", "ExternalProvisioning",
                          f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                          "or manually by the system administrator. If volume creation is delayed, please verify "
                          "that the provisioner is running and correctly registered.")

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """bind(): the volume's claimRef and phase, then the claim's volumeName, annotations and status."""
        pv_name = pv["metadata"]["name"]
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != pvc["metadata"].get("uid") or ref.get("name") != pvc["metadata"]["name"]:
            fresh = metautil.deep_copy(pv)
            fresh["spec"]["claimRef"] = pvutil.claim_ref(pvc)
            if not ref:
                fresh["metadata"].setdefault("annotations", {})[pvutil.ANN_BOUND_BY_CONTROLLER] = "yes"
            pv = await self.pvs.update(fresh)
        if (pv.get("status") or {}).get("phase") != "Bound":
            pv = await self._volume_phase(pv, "Bound")
        ann = pvc["metadata"].get("annotations") or {}
        spec = pvc.get("spec") or {}
        if spec.get("volumeName") != pv_name or ann.get(pvutil.ANN_BIND_COMPLETED) != "yes" or \
                (not spec.get("volumeName") and not ann.get(pvutil.ANN_BOUND_BY_CONTROLLER)):
            fresh = metautil.deep_copy(pvc)
            fa = fresh["metadata"].setdefault("annotations", {})
            if not spec.get("volumeName"):
                fa[pvutil.ANN_BOUND_BY_CONTROLLER] = "yes"
            fa[pvutil.ANN_BIND_COMPLETED] = "yes"
            fresh["spec"]["volumeName"] = pv_name
            pvc = await self.pvcs.update(fresh, namespace=pvc["metadata"]["namespace"])
        status = pvc.get("status") or {}
        pv_spec = pv.get("spec") or {}
        want_capacity = {"storage": (pv_spec.get("capacity") or {}).get("storage")}
        if status.get("phase") != "Bound" or status.get("accessModes") != pv_spec.get("accessModes") \
                or status.get("capacity") != want_capacity:
            new_status = {**status, "phase": "Bound", "accessModes": list(pv_spec.get("accessModes") or []),
                          "capacity": want_capacity}
            await self.pvcs.update_status({**pvc, "status": new_status}, namespace=pvc["metadata"]["namespace"])

    async def _claim_phase(self, pvc: Obj, phase: str) -> None:
        status = pvc.get("status") or {}
        if status.get("phase") == phase:
            return
        new_status = {k: v for k, v in status.items() if k not in ("accessModes", "capacity")} \
            if phase != "Bound" else dict(status)
        new_status["phase"] = phase
        try:
            await self.pvcs.update_status({**pvc, "status": new_status}, namespace=pvc["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise

    def _claim_event(self, pvc: Obj, etype: str, reason: str, message: str) -> None:
        self.recorder.event({"kind": "PersistentVolumeClaim", "apiVersion": "v1", **pvc}, etype, reason, message)

    def _enqueue_pending_claims(self) -> None:
        for pvc in self.pvc_informer.store.list():
            if not (pvc.get("spec") or {}).get("volumeName") and not pvc["metadata"].get("deletionTimestamp"):
                self.controller.enqueue("pvc:" + meta_namespace_key(pvc))

    # ------------------------------------------------------------------------------ volumes
    @requeue_on_conflict
    async def sync_volume(self, name: str) -> float | None:
        pv = self.pv_informer.store.get(None, name)
        if pv is None:
            return None
        spec = pv.get("spec") or {}
        ref = spec.get("claimRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            if (pv.get("status") or {}).get("phase") != "Available":
                await self._volume_phase(pv, "Available")  # the update brings the volume back here
            else:
                self._enqueue_pending_claims()  # an Available volume may be what a waiting claim needs
            return None
        claim_key = f"{ref.get('namespace') or ''}/{ref['name']}"
        pvc = self.pvc_informer.store.get(ref.get("namespace") or "", ref["name"])
        if not ref.get("uid"):
            # pre-bound by the user to a claim not bound yet: available for that claim only
            await self._volume_phase(pv, "Available")
            if pvc is not None:
                self.controller.enqueue("pvc:" + claim_key)
            return None
        if pvc is not None and pvc["metadata"].get("uid") != ref.get("uid"):
            pvc = None  # a claim of the same name, not ours
        if pvc is None:
            # the cache may lag behind a claim just created: ask the server before releasing
            try:
                live = await self.pvcs.get(ref["name"], namespace=ref.get("namespace") or "")
                if live["metadata"].get("uid") == ref.get("uid"):
                    return 1.0
            except StatusError as e:
                if e.code != 404:
                    raise
            return await self._release(pv)
        claim_volume = (pvc.get("spec") or {}).get("volumeName") or ""
        if not claim_volume:
            # bound on the volume's side only (by the scheduler or a provisioner): syncClaim finishes it
            self.controller.enqueue("pvc:" + claim_key)
            return None
        if claim_volume == name:
            await self._volume_phase(pv, "Bound")
            return None
        # the claim went to another volume
        if (pv["metadata"].get("annotations") or {}).get(pvutil.ANN_BOUND_BY_CONTROLLER):
            fresh = metautil.deep_copy(pv)
            fresh["spec"].pop("claimRef", None)
            fresh["metadata"]["annotations"].pop(pvutil.ANN_BOUND_BY_CONTROLLER, None)
            pv = await self.pvs.update(fresh)
            await self._volume_phase(pv, "Available")
        else:
            await self._release(pv)
        return None

    async def _release(self, pv: Obj) -> None:
        """The claim is gone: Released, then reclaimVolume by the volume's reclaim policy."""
        phase = (pv.get("status") or {}).get("phase")
        if phase not in ("Released", "Failed"):
            pv = await self._volume_phase(pv, "Released")
            phase = "Released"
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if phase != "Released" or policy == "Retain":
            return None
        provisioned_by = (pv["metadata"].get("annotations") or {}).get(pvutil.ANN_DYNAMICALLY_PROVISIONED)
        if policy == "Delete" and provisioned_by:
            return None  # the external provisioner deletes what it provisioned
        if policy == "Delete":
            message = (f'error getting deleter volume plugin for volume "{pv["metadata"]["name"]}": '
                       "no deletable volume plugin matched")
            self.recorder.event({"kind": "PersistentVolume", "apiVersion": "v1", **pv}, "Warning",
                                "VolumeFailedDelete", message)
        else:
            message = "No recycler plugin found for the volume!"
            self.recorder.event({"kind": "PersistentVolume", "apiVersion": "v1", **pv}, "Warning",
                                "VolumeFailedRecycle", message)
        await self._volume_phase(pv, "Failed", message)
        return None

    async def _volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        status = pv.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return pv
        new_status = {k: v for k, v in status.items() if k not in ("message", "reason")}
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        if status.get("phase") != phase:
            new_status["lastPhaseTransitionTime"] = metautil.now_rfc3339()
        try:
            return await self.pvs.update_status({**pv, "status": new_status})
        except StatusError as e:
            if e.code != 404:
                raise
            return pv

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
