"""storage.k8s.io/v1 CSI kinds: CSIDriver, CSINode, CSIStorageCapacity and VolumeAttachment.

Served as upstream (defaults, essential validation, columns); kubelite has no CSI plugins of its own,
so these objects are written by whoever runs CSI drivers on the nodes.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "storage.k8s.io"
FS_GROUP_POLICIES = ["File", "None", "ReadWriteOnceWithFSType"]
LIFECYCLE_MODES = ["Ephemeral", "Persistent"]


def default_csidriver(obj: Obj) -> None:
    """SetDefaults_CSIDriver."""
    spec = obj.setdefault("spec", {})
    for key, value in (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                       ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False),
                       ("seLinuxMount", False)):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def validate_csidriver(obj: Obj) -> list[FieldError]:
    """ValidateCSIDriver: the name is a CSI driver name; fsGroupPolicy and modes are known."""
    name = (obj.get("metadata") or {}).get("name") or ""
    errs: list[FieldError] = []
    if len(name) > 63:
        errs.append(ferr.too_long("metadata.name", name, 63))
    spec = obj.get("spec") or {}
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in FS_GROUP_POLICIES:
        errs.append(ferr.not_supported("spec.fsGroupPolicy", policy, FS_GROUP_POLICIES))
    for i, mode in enumerate(spec.get("volumeLifecycleModes") or []):
        if mode not in LIFECYCLE_MODES:
            errs.append(ferr.not_supported(f"spec.volumeLifecycleModes[{i}]", mode, LIFECYCLE_MODES))
    return errs


def validate_csidriver_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old) + validate_csidriver(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for key in ("attachRequired", "podInfoOnMount", "volumeLifecycleModes"):
        if ns.get(key) != os_.get(key):
            errs.append(ferr.invalid(f"spec.{key}", ns.get(key), "field is immutable"))
    return errs


def _bool(v: object) -> str:
    return "true" if v else "false"


def csidriver_row(obj: Obj) -> list:
    """printCSIDriver."""
    spec = obj.get("spec") or {}
    modes = ",".join(spec.get("volumeLifecycleModes") or []) or "<none>"
    tokens = ",".join(t.get("audience") or "" for t in spec.get("tokenRequests") or []) or "<unset>"
    return [spec.get("attachRequired") is not False, bool(spec.get("podInfoOnMount")),
            bool(spec.get("storageCapacity")), tokens, bool(spec.get("requiresRepublish")), modes, age_cell(obj)]


def validate_csinode(obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, d in enumerate((obj.get("spec") or {}).get("drivers") or []):
        d = d or {}
        if not d.get("name"):
            errs.append(ferr.required(f"spec.drivers[{i}].name", ""))
        if not d.get("nodeID"):
            errs.append(ferr.required(f"spec.drivers[{i}].nodeID", ""))
        if d.get("name") in seen:
            errs.append(ferr.duplicate(f"spec.drivers[{i}].name", d.get("name")))
        seen.add(d.get("name"))
    return errs


def csinode_row(obj: Obj) -> list:
    return [len((obj.get("spec") or {}).get("drivers") or []), age_cell(obj)]


def validate_capacity(obj: Obj) -> list[FieldError]:
    sc = obj.get("storageClassName") or ""
    if not sc:
        return [ferr.required("storageClassName", "")]
    return [ferr.invalid("storageClassName", sc, m) for m in common.dns1123_subdomain(sc)]


def capacity_row(obj: Obj) -> list:
    cap = obj.get("capacity")
    return [obj.get("storageClassName") or "", common.canonical_quantity(cap) if cap is not None else "<unset>",
            age_cell(obj)]


def validate_attachment(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if not spec.get("attacher"):
        errs.append(ferr.required("spec.attacher", ""))
    if not spec.get("nodeName"):
        errs.append(ferr.required("spec.nodeName", ""))
    source = spec.get("source") or {}
    if not source.get("persistentVolumeName") and not source.get("inlineVolumeSpec"):
        errs.append(ferr.required("spec.source", "must specify exactly one of inlineVolumeSpec and "
                                                 "persistentVolumeName"))
    return errs


def validate_attachment_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old) + validate_attachment(new)
    if (new.get("spec") or {}) != (old.get("spec") or {}):
        errs.append(ferr.invalid("spec", new.get("spec"), "field is immutable"))
    return errs


def attachment_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    return [spec.get("attacher") or "", (spec.get("source") or {}).get("persistentVolumeName") or "",
            spec.get("nodeName") or "", bool((obj.get("status") or {}).get("attached")), age_cell(obj)]


def default_attachment(obj: Obj) -> None:
    """VolumeAttachmentStatus is a struct whose `attached` is never omitted: a new attachment reads attached=false."""
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("attached", False)


def _update(validate):
    return lambda new, old: common.validate_object_meta_update(new, old) + validate(new)


def register(reg: Registry) -> None:
    g, v = GROUP, "v1"
    reg.register(Resource(
        group=g, version=v, kind="CSIDriver", plural="csidrivers", namespaced=False,
        definition=definition(g, v, "CSIDriver"),
        columns=(Column("AttachRequired", "boolean", description="Indicates this CSI volume driver requires an attach "
                        "operation."),
                 Column("PodInfoOnMount", "boolean", description="Indicates this CSI volume driver requires "
                        "additional pod information during mount operations."),
                 Column("StorageCapacity", "boolean", description="Indicates this CSI volume driver supports storage "
                        "capacity tracking."),
                 Column("TokenRequests", "string", description="Indicates this CSI volume driver requires the "
                        "service account token."),
                 Column("RequiresRepublish", "boolean", description="Indicates this CSI volume driver requires "
                        "NodePublishVolume periodically."),
                 Column("Modes", "string", description="Volume lifecycle modes supported by the driver."),
                 age_column()),
        row=csidriver_row, default=default_csidriver, validate=validate_csidriver,
        validate_update=validate_csidriver_update,
    ))
    reg.register(Resource(
        group=g, version=v, kind="CSINode", plural="csinodes", namespaced=False,
        definition=definition(g, v, "CSINode"),
        columns=(Column("Drivers", "integer", description="Drivers indicates the number of CSI drivers registered "
                        "on the node"), age_column()),
        row=csinode_row, validate=validate_csinode, validate_update=_update(validate_csinode),
    ))
    reg.register(Resource(
        group=g, version=v, kind="CSIStorageCapacity", plural="csistoragecapacities", namespaced=True,
        definition=definition(g, v, "CSIStorageCapacity"),
        columns=(Column("StorageClassName", "string", description=common.column_doc(
            "io.k8s.api.storage.v1.CSIStorageCapacity", "storageClassName")),
                 Column("Capacity", "string", description=common.column_doc(
                     "io.k8s.api.storage.v1.CSIStorageCapacity", "capacity")),
                 age_column()),
        row=capacity_row, validate=validate_capacity, validate_update=_update(validate_capacity),
    ))
    reg.register(Resource(
        group=g, version=v, kind="VolumeAttachment", plural="volumeattachments", namespaced=False,
        subresources=("status",), definition=definition(g, v, "VolumeAttachment"),
        columns=(Column("Attacher", "string", format="name", description="Attacher indicates the name of the volume "
                        "driver that MUST handle this request."),
                 Column("PV", "string", description="Name of the PersistentVolume to attach."),
                 Column("Node", "string", description="The node that the volume should be attached to."),
                 Column("Attached", "boolean", description="Attached indicates the volume is successfully attached "
                        "to the node."), age_column()),
        row=attachment_row, default=default_attachment, validate=validate_attachment, validate_update=validate_attachment_update,
    ))
