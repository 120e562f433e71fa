"""core/v1 Pod, PodTemplate and ReplicationController: their strategies and printers.

Pod spec defaulting/validation lives in `pod.py` (shared with every workload kind); this module
holds what is special to these kinds, as upstream's pkg/registry/core/{pod,podtemplate,
replicationcontroller}/strategy.go do.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.registry import Column, Resource, ScaleSpec
from kubelite.api.schema import definition_for_kind

# ---------------------------------------------------------------------------------------------
# Pod


def prepare_pod_create(obj: dict) -> None:
    """Pod PrepareForCreate: status is {phase: Pending, qosClass}; gated pods get the SchedulingGated condition."""
    spec = obj.get("spec") or {}
    status: dict = {"phase": "Pending", "qosClass": pod.compute_qos(spec)}
    if spec.get("schedulingGates"):
        status["conditions"] = [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": common.now_rfc3339(), "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }]
    obj["status"] = status


def prepare_pod_update(new: dict, old: dict) -> None:
    """Pod PrepareForUpdate: the main resource never changes status."""
    if "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)


def prepare_pod_status_update(new: dict, old: dict) -> None:
    """Conditions keep `lastProbeTime`: upstream's typed PodCondition always writes it (a zero time is
    null), so `kubectl get pod -o yaml` shows `lastProbeTime: null` even after a patch that dropped it."""
    for c in (new.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and "lastProbeTime" not in c:
            c["lastProbeTime"] = None


def _pod_columns() -> tuple[Column, ...]:
    status_def, spec_def = "io.k8s.api.core.v1.PodStatus", "io.k8s.api.core.v1.PodSpec"
    return (
        Column("Ready", "string", description="The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", "string", description="The aggregate status of the containers in this pod."),
        Column("Restarts", "string", description="The number of times the containers in this pod have been restarted "
               "and when the last container in this pod has restarted."),
        common.age_column(),
        Column("IP", "string", priority=1, description=common.column_doc(status_def, "podIP")),
        Column("Node", "string", priority=1, description=common.column_doc(spec_def, "nodeName")),
        Column("Nominated Node", "string", priority=1, description=common.column_doc(status_def, "nominatedNodeName")),
        Column("Readiness Gates", "string", priority=1, description=common.column_doc(spec_def, "readinessGates")),
    )


def pod_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="Pod", plural="pods", namespaced=True,
        short_names=("po",), categories=("all",),
        subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy",
                      "ephemeralcontainers"),
        definition=definition_for_kind("", "v1", "Pod") or "",
        columns=_pod_columns(), row=pod.pod_row,
        default=pod.default_pod, validate=pod.validate_pod_create, validate_update=pod.validate_pod_update,
        validate_status_update=pod.validate_pod_status_update, prepare_status_update=prepare_pod_status_update,
        prepare_create=prepare_pod_create, prepare_update=prepare_pod_update,
        tracks_generation=False, name_rule="subdomain",
    )


# ---------------------------------------------------------------------------------------------
# PodTemplate


def default_pod_template_kind(obj: dict) -> None:
    pod.default_pod_template(obj.setdefault("template", {}))


def validate_pod_template_kind(obj: dict) -> list[FieldError]:
    return pod.validate_pod_template(obj.get("template") or {}, "template")


def validate_pod_template_kind_update(new: dict, old: dict) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    return errs + pod.validate_pod_template(new.get("template") or {}, "template")


def pod_template_row(obj: dict) -> list:
    tmpl = obj.get("template") or {}
    names, images = pod.layout_container_cells((tmpl.get("spec") or {}).get("containers") or [])
    return [names, images, common.format_labels((tmpl.get("metadata") or {}).get("labels"))]


def pod_template_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="PodTemplate", plural="podtemplates", namespaced=True,
        definition=definition_for_kind("", "v1", "PodTemplate") or "",
        columns=(
            Column("Containers", "string", description="Names of each container in the template."),
            Column("Images", "string", description="Images referenced by each container in the template."),
            Column("Pod Labels", "string", description="The labels for the pod template."),
        ),
        row=pod_template_row,
        default=default_pod_template_kind, validate=validate_pod_template_kind,
        validate_update=validate_pod_template_kind_update,
        # upstream bumps generation of pod templates when the template changes
        tracks_generation=True,
    )


# ---------------------------------------------------------------------------------------------
# ReplicationController


def default_rc(obj: dict) -> None:
    """SetDefaults_ReplicationController: selector and labels from the template's labels; replicas 1."""
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        labels = (tmpl.get("metadata") or {}).get("labels")
        if labels is not None:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            meta = obj.setdefault("metadata", {})
            if not meta.get("labels"):
                meta["labels"] = dict(labels)
        pod.default_pod_template(tmpl)


def _validate_rc_spec(spec: dict, path: str) -> list[FieldError]:
    errs = common.non_negative(spec.get("minReadySeconds") or 0, f"{path}.minReadySeconds")
    selector = spec.get("selector") or {}
    if not selector:
        errs.append(ferr.required(f"{path}.selector"))
    errs += common.non_negative(spec.get("replicas"), f"{path}.replicas")
    tmpl = spec.get("template")
    tp = f"{path}.template"
    if not isinstance(tmpl, dict):
        errs.append(ferr.required(tp))
        return errs
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.append(ferr.invalid(f"{tp}.metadata.labels", labels, "`selector` does not match template `labels`"))
    errs += pod.validate_pod_template(tmpl, tp)
    tspec = tmpl.get("spec") or {}
    if tspec.get("restartPolicy") != "Always":
        errs.append(ferr.not_supported(f"{tp}.spec.restartPolicy", tspec.get("restartPolicy") or "", ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(ferr.forbidden(f"{tp}.spec.activeDeadlineSeconds",
                                   "activeDeadlineSeconds in ReplicationController is not Supported"))
    return errs


def validate_rc(obj: dict) -> list[FieldError]:
    return _validate_rc_spec(obj.get("spec") or {}, "spec")


def validate_rc_update(new: dict, old: dict) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    return errs + _validate_rc_spec(new.get("spec") or {}, "spec")


def prepare_rc_create(obj: dict) -> None:
    """PrepareForCreate: empty status (replicas 0); generation is the generic code's business."""
    obj["status"] = {"replicas": 0}


def prepare_rc_update(new: dict, old: dict) -> None:
    new["status"] = old.get("status") or {"replicas": 0}


def rc_row(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    names, images = pod.layout_container_cells(containers)
    return [spec.get("replicas") or 0, status.get("replicas") or 0, status.get("readyReplicas") or 0,
            common.creation_age(obj), names, images, common.format_labels(spec.get("selector"))]


def rc_selector(obj: dict) -> str:
    """labels.SelectorFromSet(spec.selector).String(), as the Scale's status.selector."""
    sel = (obj.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={sel[k]}" for k in sorted(sel))


def rc_resource() -> Resource:
    spec_def, status_def = "io.k8s.api.core.v1.ReplicationControllerSpec", "io.k8s.api.core.v1.ReplicationControllerStatus"
    return Resource(
        group="", version="v1", kind="ReplicationController", plural="replicationcontrollers", namespaced=True,
        short_names=("rc",), categories=("all",), subresources=("status", "scale"),
        definition=definition_for_kind("", "v1", "ReplicationController") or "",
        columns=(
            Column("Desired", "integer", description=common.column_doc(spec_def, "replicas")),
            Column("Current", "integer", description=common.column_doc(status_def, "replicas")),
            Column("Ready", "integer", description=common.column_doc(status_def, "readyReplicas")),
            common.age_column(),
            Column("Containers", "string", priority=1, description="Names of each container in the template."),
            Column("Images", "string", priority=1, description="Images referenced by each container in the template."),
            Column("Selector", "string", priority=1, description=common.column_doc(spec_def, "selector")),
        ),
        row=rc_row, default=default_rc, validate=validate_rc, validate_update=validate_rc_update,
        prepare_create=prepare_rc_create, prepare_update=prepare_rc_update,
        tracks_generation=True, scale=ScaleSpec(selector=rc_selector),
    )


def resources() -> list[Resource]:
    return [pod_resource(), pod_template_resource(), rc_resource()]
