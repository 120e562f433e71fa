"""The pvc-protection and pv-protection controllers (upstream pkg/controller/volume/pvcprotection and
pvprotection): a claim keeps `kubernetes.io/pvc-protection` while a scheduled, unfinished pod uses
it, and a volume keeps `kubernetes.io/pv-protection` while it is Bound, so that `kubectl delete pvc`
of a claim in use leaves it Terminating until its pods are gone. Both also add their finalizer to
objects that lack it (created before the admission plugin ran)."""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.apiserver.admission.storage import PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers.pvutil import pod_claim_names
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _pod_claim_keys(pod: Obj) -> list[str]:
    ns = (pod.get("metadata") or {}).get("namespace") or ""
    return [f"{ns}/{c}" for c in pod_claim_names(pod)]


def pod_uses_claim(pod: Obj, claim: str) -> bool:
    """podUsesPVC: only scheduled pods count (the kubelet refuses a claim being deleted), and a pod
    that has finished no longer uses anything."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return claim in pod_claim_names(pod)


async def _set_finalizers(resource: Any, obj: Obj, finalizers: list[str]) -> None:
    """Write `obj` back with `finalizers` (resourceVersion kept: a conflict requeues the sync)."""
    fresh = metautil.deep_copy(obj)
    fresh["metadata"]["finalizers"] = finalizers
    try:
        await resource.update(fresh, namespace=obj["metadata"].get("namespace"))
    except StatusError as e:
        if e.code != 404:
            raise


class PVCProtectionController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 1):
        self.pvcs = client.resource("", "v1", "persistentvolumeclaims")
        self.pods = client.resource("", "v1", "pods")
        self.pvc_informer = factory.informer("", "v1", "persistentvolumeclaims")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.pod_informer.store.add_index("pvc", _pod_claim_keys)
        self.controller = Controller("pvc-protection-controller", self.sync, workers=workers)
        self.controller.watch(self.pvc_informer)
        self.pod_informer.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _pod_event(self, pod: Obj) -> None:
        """A pod that stops using a claim may let a terminating claim go."""
        for key in _pod_claim_keys(pod):
            pvc = self.pvc_informer.store.get_by_key(key)
            if pvc is not None and pvc["metadata"].get("deletionTimestamp"):
                self.controller.enqueue(key)

    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        pvc = self.pvc_informer.store.get(ns, name)
        if pvc is None:
            return None
        finalizers = pvc["metadata"].get("finalizers") or []
        deleting = bool(pvc["metadata"].get("deletionTimestamp"))
        if not deleting:
            if PVC_PROTECTION_FINALIZER not in finalizers:
                await _set_finalizers(self.pvcs, pvc, [*finalizers, PVC_PROTECTION_FINALIZER])
            return None
        if PVC_PROTECTION_FINALIZER not in finalizers:
            return None
        if any(pod_uses_claim(p, name) for p in self.pod_informer.store.by_index("pvc", key)):
            return None
        # the informer may lag behind a pod just created: confirm with a live list, as upstream does
        live = await self.pods.list(namespace=ns)
        if any(pod_uses_claim(p, name) for p in live.get("items") or []):
            return 1.0
        await _set_finalizers(self.pvcs, pvc, [f for f in finalizers if f != PVC_PROTECTION_FINALIZER])
        return None

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()


class PVProtectionController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 1):
        self.pvs = client.resource("", "v1", "persistentvolumes")
        self.pv_informer = factory.informer("", "v1", "persistentvolumes")
        self.controller = Controller("pv-protection-controller", self.sync, workers=workers)
        self.controller.watch(self.pv_informer)

    @requeue_on_conflict
    async def sync(self, name: str) -> float | None:
        pv = self.pv_informer.store.get(None, name)
        if pv is None:
            return None
        finalizers = pv["metadata"].get("finalizers") or []
        if not pv["metadata"].get("deletionTimestamp"):
            if PV_PROTECTION_FINALIZER not in finalizers:
                await _set_finalizers(self.pvs, pv, [*finalizers, PV_PROTECTION_FINALIZER])
            return None
        if PV_PROTECTION_FINALIZER in finalizers and (pv.get("status") or {}).get("phase") != "Bound":
            await _set_finalizers(self.pvs, pv, [f for f in finalizers if f != PV_PROTECTION_FINALIZER])
        return None

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
