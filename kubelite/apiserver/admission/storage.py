"""Upstream's storage admission plugins: DefaultStorageClass and StorageObjectInUseProtection.

DefaultStorageClass gives a new PersistentVolumeClaim that names no class (storageClassName unset,
not "") the cluster's default class: the StorageClass annotated is-default-class "true", the newest
one when several are. StorageObjectInUseProtection puts `kubernetes.io/pvc-protection` on new claims
and `kubernetes.io/pv-protection` on new volumes, so that neither disappears while in use (the
pvc-protection and pv-protection controllers remove the finalizers when it is safe).
"""

from __future__ import annotations

from typing import Any

from kubelite.api.kinds.core_storage import BETA_CLASS_ANNOTATION
from kubelite.api.kinds.storage import is_default_class
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

Obj = dict[str, Any]

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def default_class(classes: list[Obj]) -> Obj | None:
    """GetDefaultClass: of the classes marked default, the most recently created (then by name)."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    defaults.sort(key=lambda c: ((c.get("metadata") or {}).get("creationTimestamp") or "",
                                 (c.get("metadata") or {}).get("name") or ""))
    return defaults[-1]


class DefaultStorageClass(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "persistentvolumeclaims" or self._service is None:
            return
        spec = obj.setdefault("spec", {})
        if spec.get("storageClassName") is not None:
            return
        if BETA_CLASS_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
            return
        sc_res = self._service.registry.get("storage.k8s.io", "v1", "storageclasses")
        if sc_res is None:
            return
        items, _, _ = await self._service.store.list(sc_res.storage_prefix())
        sc = default_class(items)
        if sc is not None:
            spec["storageClassName"] = sc["metadata"]["name"]


class StorageObjectInUseProtection(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or res.group != "":
            return
        if res.plural == "persistentvolumeclaims":
            finalizer = PVC_PROTECTION_FINALIZER
        elif res.plural == "persistentvolumes":
            finalizer = PV_PROTECTION_FINALIZER
        else:
            return
        meta = obj.setdefault("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            meta["finalizers"] = [*finalizers, finalizer]
