"""storage.k8s.io/v1: StorageClass, and k3s's default local-path class."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition, semantic_equal
from kubelite.api.registry import Column, Obj, Registry, Resource

IS_DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
RECLAIM_POLICIES = ["Delete", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]


def builtin_local_path_storage_class() -> dict:
    """k3s's `local-path` class (rancher.io/local-path provisioner), marked as the cluster default."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "local-path", "annotations": {IS_DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def is_default_class(obj: Obj) -> bool:
    anns = (obj.get("metadata") or {}).get("annotations") or {}
    return anns.get(IS_DEFAULT_CLASS_ANNOTATION) == "true" or anns.get(BETA_IS_DEFAULT_CLASS_ANNOTATION) == "true"


def default_storageclass(obj: Obj) -> None:
    """SetDefaults_StorageClass."""
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def validate_storageclass(obj: Obj) -> list[FieldError]:
    """ValidateStorageClass."""
    errs = common.validate_object_meta(obj, False, "subdomain")
    provisioner = obj.get("provisioner") or ""
    if not provisioner:
        errs.append(ferr.required("provisioner", ""))
    else:
        errs.extend(ferr.invalid("provisioner", provisioner, m) for m in common.qualified_name(provisioner.lower()))
    params = obj.get("parameters") or {}
    if len(params) > 512:
        errs.append(ferr.too_many("parameters", len(params), 512))
    for k in params:
        if not k:
            errs.append(ferr.invalid("parameters", k, "field can not be empty."))
    rp = obj.get("reclaimPolicy")
    if rp and rp not in RECLAIM_POLICIES:
        errs.append(ferr.not_supported("reclaimPolicy", rp, RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(ferr.required("volumeBindingMode", ""))
    elif mode not in BINDING_MODES:
        errs.append(ferr.not_supported("volumeBindingMode", mode, BINDING_MODES))
    return errs


def validate_storageclass_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateStorageClassUpdate: parameters, provisioner, reclaimPolicy, volumeBindingMode are fixed."""
    errs: list[FieldError] = []
    if not semantic_equal(new.get("parameters"), old.get("parameters")):
        errs.append(ferr.forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(ferr.forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(ferr.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errs.append(ferr.invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
    return errs


def storageclass_name(obj: Obj) -> str:
    name = (obj.get("metadata") or {}).get("name") or ""
    return f"{name} (default)" if is_default_class(obj) else name


def storageclass_row(obj: Obj) -> list:
    return [
        obj.get("provisioner") or "",
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        age_cell(obj),
    ]


STORAGECLASS_COLUMNS = (
    Column("Provisioner", "string", description="provisioner indicates the type of the provisioner."),
    Column("ReclaimPolicy", "string", description="reclaimPolicy controls the reclaimPolicy for dynamically "
           "provisioned PersistentVolumes of this storage class."),
    Column("VolumeBindingMode", "string", description="volumeBindingMode indicates how PersistentVolumeClaims should "
           "be provisioned and bound."),
    Column("AllowVolumeExpansion", "string", description="allowVolumeExpansion shows whether the storage class allow "
           "volume expand."),
    age_column(),
)


def register(reg: Registry) -> None:
    g, v = "storage.k8s.io", "v1"
    reg.register(Resource(
        group=g, version=v, kind="StorageClass", plural="storageclasses", namespaced=False, short_names=("sc",),
        definition=definition(g, v, "StorageClass"), columns=STORAGECLASS_COLUMNS, row=storageclass_row,
        default=default_storageclass, validate=validate_storageclass, validate_update=validate_storageclass_update,
        name_cell=storageclass_name,
    ))
