"""The core/v1 group (group "", version "v1"): Namespace and Event here, the other kinds in
core_pod, service, node, core_config, core_storage and core_policy; `register` adds them all.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, core_config, core_pod, core_policy, core_storage, node, service
from kubelite.api.registry import Column, Registry, Resource
from kubelite.api.schema import definition_for_kind

NAME_LABEL = "kubernetes.io/metadata.name"

# ---------------------------------------------------------------------------------------------
# Namespace


def default_namespace(obj: dict) -> None:
    """SetDefaults_Namespace(+Status): the kubernetes.io/metadata.name label; phase Active."""
    meta = obj.setdefault("metadata", {})
    if meta.get("name"):
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        labels[NAME_LABEL] = meta["name"]
        meta["labels"] = labels
    status = obj.get("status")
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Active"


def prepare_namespace_create(obj: dict) -> None:
    """PrepareForCreate: status Active; spec.finalizers always holds "kubernetes"."""
    obj["status"] = {"phase": "Active"}
    spec = obj.setdefault("spec", {})
    finalizers = list(spec.get("finalizers") or [])
    if "kubernetes" not in finalizers:
        finalizers.append("kubernetes")
    spec["finalizers"] = finalizers
    default_namespace(obj)


def prepare_namespace_update(new: dict, old: dict) -> None:
    """PrepareForUpdate: finalizers and status only change through their subresources."""
    spec = new.setdefault("spec", {})
    old_fin = (old.get("spec") or {}).get("finalizers")
    if old_fin is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = list(old_fin)
    new["status"] = old.get("status") or {"phase": "Active"}
    default_namespace(new)


def _finalizer_name_errs(name: str, path: str) -> list[FieldError]:
    errs = [ferr.invalid(path, name, m) for m in common.qualified_name(name)]
    if "/" not in name and name not in common.STANDARD_FINALIZERS:
        errs.append(ferr.invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_namespace(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in (obj.get("spec") or {}).get("finalizers") or []:
        errs += _finalizer_name_errs(f, "spec.finalizers")
    return errs


def namespace_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="Namespace", plural="namespaces", namespaced=False,
        short_names=("ns",), subresources=("status", "finalize"),
        definition=definition_for_kind("", "v1", "Namespace") or "",
        columns=(Column("Status", "string", description="The status of the namespace"), common.age_column()),
        row=lambda o: [(o.get("status") or {}).get("phase") or "", common.creation_age(o)],
        default=default_namespace, validate=validate_namespace,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old),
        prepare_create=prepare_namespace_create, prepare_update=prepare_namespace_update,
        name_rule="label",
    )


# ---------------------------------------------------------------------------------------------
# Event (core/v1)


def validate_event(obj: dict) -> list[FieldError]:
    """legacyValidateEvent as applied to core/v1 requests, then the generic path-segment name check."""
    errs: list[FieldError] = []
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    involved_ns = (obj.get("involvedObject") or {}).get("namespace") or ""
    if not obj.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                errs.append(ferr.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        elif ns != involved_ns:
            errs.append(ferr.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.append(ferr.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        rc = obj.get("reportingComponent") or ""
        if not rc:
            errs.append(ferr.required("reportingComponent"))
        errs += [ferr.invalid("reportingComponent", rc, m) for m in common.qualified_name(rc)]
        ri = obj.get("reportingInstance") or ""
        if not ri:
            errs.append(ferr.required("reportingInstance"))
        if len(ri) > 128:
            errs.append(ferr.invalid("reportingInstance", "", "can have at most 128 characters"))
        action = obj.get("action") or ""
        if not action:
            errs.append(ferr.required("action"))
        if len(action) > 128:
            errs.append(ferr.invalid("action", "", "can have at most 128 characters"))
        reason = obj.get("reason") or ""
        if not reason:
            errs.append(ferr.required("reason"))
        if len(reason) > 128:
            errs.append(ferr.invalid("reason", "", "can have at most 128 characters"))
        if len(obj.get("message") or "") > 1024:
            errs.append(ferr.invalid("message", "", "can have at most 1024 characters"))
    errs += [ferr.invalid("namespace", ns, m) for m in common.dns1123_subdomain(ns)]
    return errs


def _event_source(obj: dict) -> str:
    src = obj.get("source") or {}
    component = src.get("component") or obj.get("reportingComponent") or ""
    host = src.get("host") or obj.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def event_row(obj: dict, now: float | None = None) -> list:
    """printEvent (wide layout; NAME is the last, wide-only column)."""
    first = common.age(obj.get("firstTimestamp"), now) if obj.get("firstTimestamp") else common.age(obj.get("eventTime"), now)
    last = common.age(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 0
    series = obj.get("series")
    if isinstance(series, dict):
        last = common.age(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    inv = obj.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    return [last, obj.get("type") or "", obj.get("reason") or "", target, inv.get("fieldPath") or "",
            _event_source(obj), (obj.get("message") or "").strip(), first, count,
            (obj.get("metadata") or {}).get("name") or ""]


def event_resource() -> Resource:
    d = "io.k8s.api.core.v1.Event"
    return Resource(
        group="", version="v1", kind="Event", plural="events", namespaced=True, short_names=("ev",),
        definition=definition_for_kind("", "v1", "Event") or "",
        name_in_row=True,
        columns=(
            Column("Last Seen", "string", description=common.column_doc(d, "lastTimestamp")),
            Column("Type", "string", description=common.column_doc(d, "type")),
            Column("Reason", "string", description=common.column_doc(d, "reason")),
            Column("Object", "string", description=common.column_doc(d, "involvedObject")),
            Column("Subobject", "string", priority=1,
                   description=common.column_doc("io.k8s.api.core.v1.ObjectReference", "fieldPath")),
            Column("Source", "string", priority=1, description=common.column_doc(d, "source")),
            Column("Message", "string", description=common.column_doc(d, "message")),
            Column("First Seen", "string", priority=1, description=common.column_doc(d, "firstTimestamp")),
            Column("Count", "string", priority=1, description=common.column_doc(d, "count")),
            Column("Name", "string", format="name", priority=1,
                   description=common.column_doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name")),
        ),
        row=event_row, validate=validate_event,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old) + validate_event(new),
        name_rule="path",
    )


# ---------------------------------------------------------------------------------------------


def resources() -> list[Resource]:
    """Every core/v1 kind kubelite serves."""
    return [
        namespace_resource(),
        *core_pod.resources(),
        *service.resources(),
        *core_config.resources(),
        *node.resources(),
        event_resource(),
        *core_storage.resources(),
        *core_policy.resources(),
    ]


def register(reg: Registry) -> None:
    for res in resources():
        reg.register(res)
