"""core/v1 PersistentVolume and PersistentVolumeClaim: defaults, validation, strategy, printers."""

from __future__ import annotations

import copy

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.kinds.common import parse_quantity
from kubelite.api.registry import Column, Resource
from kubelite.api.schema import definition_for_kind

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
VOLUME_MODES = ["Block", "Filesystem"]
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

_PV_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd",
               "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume",
               "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi")


def access_modes_string(modes: list) -> str:
    """helper.GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order."""
    out = []
    for mode, short in (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                        ("ReadWriteOncePod", "RWOP")):
        if mode in (modes or []):
            out.append(short)
    return ",".join(out)


def _validate_access_modes(modes: list, path: str, required_detail: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not modes:
        errs.append(ferr.required(path, required_detail))
    rwop = other = False
    for m in modes or []:
        if m not in ACCESS_MODES:
            errs.append(ferr.not_supported(path, m, ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(ferr.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _positive_storage(value, path: str) -> list[FieldError]:
    try:
        q = parse_quantity(value)
    except ValueError as e:
        return [ferr.invalid(path, value, str(e))]
    if q <= 0:
        return [ferr.invalid(path, common.canonical_quantity(value), "must be greater than zero")]
    return []


# ---------------------------------------------------------------------------------------------
# PersistentVolume


def default_pv(obj: dict) -> None:
    """SetDefaults_PersistentVolume: reclaim Retain, volumeMode Filesystem, phase Pending."""
    spec = obj.setdefault("spec", {})
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    if isinstance(spec.get("hostPath"), dict) and spec["hostPath"].get("type") is None:
        spec["hostPath"]["type"] = ""
    pod._default_resource_list(spec.get("capacity"))
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Pending"


def validate_pv(obj: dict) -> list[FieldError]:
    """ValidatePersistentVolume (the sources people use are checked in depth)."""
    spec = obj.get("spec") or {}
    errs = _validate_access_modes(spec.get("accessModes") or [], "spec.accessModes", "")
    cap = spec.get("capacity") or {}
    if not cap:
        errs.append(ferr.required("spec.capacity"))
    if "storage" not in cap or len(cap) > 1:
        errs.append(ferr.not_supported("spec.capacity", cap, ["storage"]))
    for k in sorted(cap):
        errs += _positive_storage(cap[k], f"spec.capacity[{k}]")
    rp = spec.get("persistentVolumeReclaimPolicy")
    if rp and rp not in RECLAIM_POLICIES:
        errs.append(ferr.not_supported("spec.persistentVolumeReclaimPolicy", rp, RECLAIM_POLICIES))
    n = 0
    for src in _PV_SOURCES:
        s = spec.get(src)
        if s is None:
            continue
        p = f"spec.{'cephFS' if src == 'cephfs' else src}"
        if n > 0:
            errs.append(ferr.forbidden(p, "may not specify more than 1 volume type"))
            continue
        n += 1
        s = s if isinstance(s, dict) else {}
        if src in ("hostPath", "local"):
            if not s.get("path"):
                errs.append(ferr.required(f"{p}.path"))
            elif ".." in s["path"].split("/"):
                errs.append(ferr.invalid(f"{p}.path", s["path"], "must not contain '..'"))
            if src == "local" and not spec.get("nodeAffinity"):
                errs.append(ferr.required("spec.nodeAffinity", "Local volume requires node affinity"))
        elif src == "nfs":
            if not s.get("server"):
                errs.append(ferr.required(f"{p}.server"))
            if not s.get("path"):
                errs.append(ferr.required(f"{p}.path"))
            if not (s.get("path") or "").startswith("/"):
                errs.append(ferr.invalid(f"{p}.path", s.get("path") or "", "must be an absolute path"))
        elif src == "csi":
            if not s.get("driver"):
                errs.append(ferr.required(f"{p}.driver"))
            if not s.get("volumeHandle"):
                errs.append(ferr.required(f"{p}.volumeHandle"))
    if n == 0:
        errs.append(ferr.required("spec", "must specify a volume type"))
    na = spec.get("nodeAffinity")
    if isinstance(na, dict):
        if isinstance(na.get("required"), dict):
            errs += pod.validate_node_selector(na["required"], "spec.nodeAffinity.required")
        else:
            errs.append(ferr.required("spec.nodeAffinity.required", "must specify required node constraints"))
    if spec.get("storageClassName"):
        errs += [ferr.invalid("spec.storageClassName", spec["storageClassName"], m)
                 for m in common.dns1123_subdomain(spec["storageClassName"])]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in VOLUME_MODES:
        errs.append(ferr.not_supported("spec.volumeMode", vm, VOLUME_MODES))
    return errs


def validate_pv_update(new: dict, old: dict) -> list[FieldError]:
    """ValidatePersistentVolumeUpdate: the volume source and volumeMode are immutable."""
    errs = common.validate_object_meta_update(new, old) + validate_pv(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    nsrc = {k: ns.get(k) for k in _PV_SOURCES if ns.get(k) is not None}
    osrc = {k: os_.get(k) for k in _PV_SOURCES if os_.get(k) is not None}
    if nsrc != osrc:
        errs.append(ferr.forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"))
    if ns.get("volumeMode") != os_.get("volumeMode"):
        errs.append(ferr.invalid("volumeMode", ns.get("volumeMode"), "field is immutable"))
    return errs


def prepare_pv_create(obj: dict) -> None:
    """PrepareForCreate: status Pending with its transition time."""
    obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": common.now_rfc3339()}


def _keep_status(new: dict, old: dict) -> None:
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)


def pv_class(obj: dict) -> str:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return (obj.get("spec") or {}).get("storageClassName") or ""


def pv_row(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    claim = spec.get("claimRef")
    claim_cell = f"{claim.get('namespace') or ''}/{claim.get('name') or ''}" if isinstance(claim, dict) else ""
    storage = (spec.get("capacity") or {}).get("storage")
    size = common.canonical_quantity(storage) if storage is not None else "0"
    phase = "Terminating" if (obj.get("metadata") or {}).get("deletionTimestamp") else status.get("phase") or ""
    return [size, access_modes_string(spec.get("accessModes") or []), spec.get("persistentVolumeReclaimPolicy") or "",
            phase, claim_cell, pv_class(obj), spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason") or "", common.creation_age(obj), spec.get("volumeMode") or "<unset>"]


def pv_resource() -> Resource:
    spec_def, status_def = "io.k8s.api.core.v1.PersistentVolumeSpec", "io.k8s.api.core.v1.PersistentVolumeStatus"
    return Resource(
        group="", version="v1", kind="PersistentVolume", plural="persistentvolumes", namespaced=False,
        short_names=("pv",), subresources=("status",),
        definition=definition_for_kind("", "v1", "PersistentVolume") or "",
        columns=(
            Column("Capacity", "string", description=common.column_doc(spec_def, "capacity")),
            Column("Access Modes", "string", description=common.column_doc(spec_def, "accessModes")),
            Column("Reclaim Policy", "string", description=common.column_doc(spec_def, "persistentVolumeReclaimPolicy")),
            Column("Status", "string", description=common.column_doc(status_def, "phase")),
            Column("Claim", "string", description=common.column_doc(spec_def, "claimRef")),
            Column("StorageClass", "string", description="StorageClass of the pv"),
            Column("VolumeAttributesClass", "string", description="VolumeAttributesClass of the pv"),
            Column("Reason", "string", description=common.column_doc(status_def, "reason")),
            common.age_column(),
            Column("VolumeMode", "string", priority=1, description=common.column_doc(spec_def, "volumeMode")),
        ),
        row=pv_row, default=default_pv, validate=validate_pv, validate_update=validate_pv_update,
        prepare_create=prepare_pv_create, prepare_update=_keep_status,
    )


# ---------------------------------------------------------------------------------------------
# PersistentVolumeClaim


def default_pvc(obj: dict) -> None:
    """SetDefaults_PersistentVolumeClaim(+Spec): volumeMode Filesystem, phase Pending."""
    spec = obj.setdefault("spec", {})
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    res = spec.get("resources")
    if isinstance(res, dict):
        pod._default_resource_list(res.get("requests"))
        pod._default_resource_list(res.get("limits"))
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Pending"


def validate_pvc_spec(spec: dict, path: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec."""
    errs = _validate_access_modes(spec.get("accessModes") or [], f"{path}.accessModes", "at least 1 access mode is required")
    if spec.get("selector") is not None:
        errs += common.validate_label_selector(spec.get("selector"), f"{path}.selector")
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        errs.append(ferr.required(f"{path}.resources[storage]"))
    else:
        perrs = _positive_storage(requests["storage"], f"{path}.resources[storage]")
        errs += perrs or pod.validate_quantity_value("storage", requests["storage"], f"{path}.resources[storage]")
    sc = spec.get("storageClassName")
    if sc:
        errs += [ferr.invalid(f"{path}.storageClassName", sc, m) for m in common.dns1123_subdomain(sc)]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in VOLUME_MODES:
        errs.append(ferr.not_supported(f"{path}.volumeMode", vm, VOLUME_MODES))
    return errs


def validate_pvc(obj: dict) -> list[FieldError]:
    return validate_pvc_spec(obj.get("spec") or {}, "spec")


def validate_pvc_update(new: dict, old: dict) -> list[FieldError]:
    """ValidatePersistentVolumeClaimUpdate: the spec is immutable except a bound claim's storage request."""
    errs = common.validate_object_meta_update(new, old) + validate_pvc(new)
    ns, os_ = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
    if not os_.get("volumeName"):
        if "volumeName" in ns:
            os_["volumeName"] = ns["volumeName"]
        else:
            os_.pop("volumeName", None)
    if os_.get("storageClassName") is None and ns.get("storageClassName") is not None:
        old_ann = ((old.get("metadata") or {}).get("annotations") or {}).get(BETA_CLASS_ANNOTATION)
        if old_ann is None or old_ann == ns["storageClassName"]:
            os_["storageClassName"] = ns["storageClassName"]
    bound = (new.get("status") or {}).get("phase") == "Bound"
    if bound and isinstance((ns.get("resources") or {}).get("requests"), dict):
        ns["resources"]["requests"]["storage"] = ((os_.get("resources") or {}).get("requests") or {}).get("storage")
    ns.pop("volumeAttributesClassName", None)
    os_.pop("volumeAttributesClassName", None)
    if ns != os_:
        errs.append(ferr.forbidden("spec", "spec is immutable after creation except resources.requests and "
                                           "volumeAttributesClassName for bound claims\n"))
    try:
        new_size = parse_quantity(((new.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0))
        old_size = parse_quantity(((old.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0))
        if new_size < old_size:
            errs.append(ferr.forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    except (ValueError, AttributeError):
        pass
    if (new.get("spec") or {}).get("volumeMode") != (old.get("spec") or {}).get("volumeMode"):
        errs.append(ferr.invalid("volumeMode", (new.get("spec") or {}).get("volumeMode"), "field is immutable"))
    return errs


def prepare_pvc_create(obj: dict) -> None:
    """PrepareForCreate: an empty status, which reads back as phase Pending."""
    obj["status"] = {"phase": "Pending"}


def pvc_class(obj: dict) -> str:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return (obj.get("spec") or {}).get("storageClassName") or ""


def pvc_row(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if (obj.get("metadata") or {}).get("deletionTimestamp") else status.get("phase") or ""
    capacity = access = ""
    if spec.get("volumeName"):
        access = access_modes_string(status.get("accessModes") or [])
        storage = (status.get("capacity") or {}).get("storage")
        capacity = common.canonical_quantity(storage) if storage is not None else "0"
    return [phase, spec.get("volumeName") or "", capacity, access, pvc_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>", common.creation_age(obj), spec.get("volumeMode") or "<unset>"]


def pvc_resource() -> Resource:
    spec_def, status_def = "io.k8s.api.core.v1.PersistentVolumeClaimSpec", "io.k8s.api.core.v1.PersistentVolumeClaimStatus"
    return Resource(
        group="", version="v1", kind="PersistentVolumeClaim", plural="persistentvolumeclaims", namespaced=True,
        short_names=("pvc",), subresources=("status",),
        definition=definition_for_kind("", "v1", "PersistentVolumeClaim") or "",
        columns=(
            Column("Status", "string", description=common.column_doc(status_def, "phase")),
            Column("Volume", "string", description=common.column_doc(spec_def, "volumeName")),
            Column("Capacity", "string", description=common.column_doc(status_def, "capacity")),
            Column("Access Modes", "string", description=common.column_doc(status_def, "accessModes")),
            Column("StorageClass", "string", description="StorageClass of the pvc"),
            Column("VolumeAttributesClass", "string", description="VolumeAttributesClass of the pvc"),
            common.age_column(),
            Column("VolumeMode", "string", priority=1, description=common.column_doc(spec_def, "volumeMode")),
        ),
        row=pvc_row, default=default_pvc, validate=validate_pvc, validate_update=validate_pvc_update,
        prepare_create=prepare_pvc_create, prepare_update=_keep_status,
    )


def resources() -> list[Resource]:
    return [pv_resource(), pvc_resource()]
