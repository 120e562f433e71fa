"""PersistentVolume/PersistentVolumeClaim helpers shared by the PV controller, the provisioner and the
scheduler's VolumeBinding plugin (upstream keeps them in pkg/controller/volume/persistentvolume and
component-helpers/storage/volume for the same reason): claim class, binding mode, node affinity and
findMatchingVolume."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubelite.api.kinds.common import parse_quantity
from kubelite.api.kinds.core_storage import BETA_CLASS_ANNOTATION
from kubelite.api.selectors import SelectorError, selector_from_label_selector

Obj = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def claim_class(pvc: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: Obj) -> str:
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return (pv.get("spec") or {}).get("storageClassName") or ""


def storage_quantity(resources: dict | None) -> Decimal:
    try:
        return parse_quantity((resources or {}).get("storage", 0))
    except ValueError:
        return Decimal(0)


def requested_storage(pvc: Obj) -> Decimal:
    return storage_quantity(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))


def volume_capacity(pv: Obj) -> Decimal:
    return storage_quantity((pv.get("spec") or {}).get("capacity"))


def is_delay_binding(pvc: Obj, classes: Any) -> bool:
    """IsDelayBindingMode: the claim's class exists and binds WaitForFirstConsumer. `classes` is a
    store with get(None, name)."""
    name = claim_class(pvc)
    if not name:
        return False
    sc = classes.get(None, name)
    return bool(sc) and sc.get("volumeBindingMode") == "WaitForFirstConsumer"


def is_bound_to_claim(pv: Obj, pvc: Obj) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim (and its uid, once set)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not isinstance(ref, dict):
        return False
    meta = pvc.get("metadata") or {}
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def node_affinity_matches(pv: Obj, node: Obj) -> bool:
    """CheckNodeAffinity: any of the volume's required node selector terms matches the node."""
    from kubelite.scheduler.nodeinfo import node_selector_term

    required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required"))
    if not isinstance(required, dict):
        return True
    meta = node.get("metadata") or {}
    labels, name = meta.get("labels") or {}, meta.get("name") or ""
    return any(node_selector_term(t or {}).matches(labels, name) for t in required.get("nodeSelectorTerms") or [])


def check_access_modes(pvc: Obj, pv: Obj) -> bool:
    want = set((pvc.get("spec") or {}).get("accessModes") or [])
    return want <= set((pv.get("spec") or {}).get("accessModes") or [])


def _volume_mode(obj: Obj) -> str:
    return (obj.get("spec") or {}).get("volumeMode") or "Filesystem"


def find_matching_volume(pvc: Obj, volumes: list[Obj], node: Obj | None = None, exclude: set[str] | None = None,
                         delay_binding: bool = False) -> Obj | None:
    """findMatchingVolume: a volume pre-bound to the claim if any, else the smallest Available one
    of the claim's class whose access modes, capacity, selector (and node affinity, given a node)
    fit. With delayed binding and no node, only a pre-bound volume is taken: the scheduler chooses."""
    requested = requested_storage(pvc)
    cls = claim_class(pvc)
    raw_selector = (pvc.get("spec") or {}).get("selector")
    try:
        selector = selector_from_label_selector(raw_selector) if raw_selector is not None else None
    except (SelectorError, AttributeError, TypeError):
        return None
    best: Obj | None = None
    best_key: tuple | None = None
    for pv in volumes:
        name = pv["metadata"]["name"]
        if exclude and name in exclude:
            continue
        if _volume_mode(pv) != _volume_mode(pvc) or pv["metadata"].get("deletionTimestamp"):
            continue
        if node is not None and not node_affinity_matches(pv, node):
            continue
        capacity = volume_capacity(pv)
        if is_bound_to_claim(pv, pvc):
            if capacity < requested or volume_class(pv) != cls:
                continue
            return pv
        if node is None and delay_binding:
            continue
        if (pv.get("status") or {}).get("phase") != "Available" or (pv.get("spec") or {}).get("claimRef"):
            continue
        if selector is not None and not selector.matches(pv["metadata"].get("labels") or {}):
            continue
        if volume_class(pv) != cls or not check_access_modes(pvc, pv) or capacity < requested:
            continue
        key = (capacity, len((pv.get("spec") or {}).get("accessModes") or []), name)
        if best_key is None or key < best_key:
            best, best_key = pv, key
    return best


def pod_claim_names(pod: Obj) -> list[str]:
    """The claims a pod uses: persistentVolumeClaim volumes and generic ephemeral `<pod>-<volume>`."""
    out = []
    pod_name = (pod.get("metadata") or {}).get("name") or ""
    for v in (pod.get("spec") or {}).get("volumes") or []:
        if isinstance(v.get("persistentVolumeClaim"), dict) and v["persistentVolumeClaim"].get("claimName"):
            out.append(v["persistentVolumeClaim"]["claimName"])
        elif isinstance(v.get("ephemeral"), dict):
            out.append(f"{pod_name}-{v.get('name', '')}")
    return out


def claim_ref(pvc: Obj) -> Obj:
    """GetReference of a claim, as claimRef holds it."""
    meta = pvc.get("metadata") or {}
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "uid": meta.get("uid", ""), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")}
