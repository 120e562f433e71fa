"""core/v1 PodTemplate, ComponentStatus and Binding: the rest of upstream's core/v1 surface.

ComponentStatus is read-only (upstream computes it from health checks; kubelite's components run
in-process, so the server records them as healthy at bootstrap). Binding is create-only: POSTing one
to /namespaces/<ns>/bindings binds the named pod, as pods/<name>/binding does.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.kinds.apps import definition
from kubelite.api.registry import Column, Obj, Registry, Resource

COMPONENTS = ("scheduler", "controller-manager", "etcd-0")


def builtin_component_statuses() -> list[Obj]:
    """What `kubectl get componentstatuses` shows on a healthy upstream control plane."""
    return [{"apiVersion": "v1", "kind": "ComponentStatus", "metadata": {"name": name},
             "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]} for name in COMPONENTS]


def default_podtemplate(obj: Obj) -> None:
    pod.default_pod_template(obj.setdefault("template", {}))


def validate_podtemplate(obj: Obj) -> list[FieldError]:
    """ValidatePodTemplate: the template is validated as a pod template (restartPolicy included)."""
    return pod.validate_pod_template(obj.get("template") or {}, "template")


def podtemplate_row(obj: Obj) -> list:
    tmpl = obj.get("template") or {}
    containers = (tmpl.get("spec") or {}).get("containers") or []
    return [",".join(c.get("name") or "" for c in containers), ",".join(c.get("image") or "" for c in containers),
            common.format_labels((tmpl.get("metadata") or {}).get("labels"))]


def componentstatus_row(obj: Obj) -> list:
    """printComponentStatus: the Healthy condition's status, message and error."""
    status, message, error = "Unknown", "", ""
    for c in obj.get("conditions") or []:
        if c.get("type") == "Healthy":
            status = {"True": "Healthy", "False": "Unhealthy"}.get(c.get("status"), "Unknown")
            message, error = c.get("message") or "", c.get("error") or ""
            break
    return [status, message, error]


def validate_binding(obj: Obj) -> list[FieldError]:
    if not (obj.get("target") or {}).get("name"):
        return [ferr.required("target.name", "")]
    return []


def register(reg: Registry) -> None:
    reg.register(Resource(
        group="", version="v1", kind="PodTemplate", plural="podtemplates", namespaced=True,
        definition=definition("", "v1", "PodTemplate"),
        columns=(Column("Containers", "string", description="Names of each container in the template."),
                 Column("Images", "string", description="Images referenced by each container in the template."),
                 Column("Pod Labels", "string", description="The labels for the pod template.")),
        row=podtemplate_row, default=default_podtemplate, validate=validate_podtemplate,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old) + validate_podtemplate(new),
    ))
    reg.register(Resource(
        group="", version="v1", kind="ComponentStatus", plural="componentstatuses", namespaced=False,
        short_names=("cs",), verbs=("get", "list"), definition=definition("", "v1", "ComponentStatus"),
        columns=(Column("Status", "string", description="Status of the component conditions"),
                 Column("Message", "string", description="Message of the component conditions"),
                 Column("Error", "string", description="Error of the component conditions")),
        row=componentstatus_row,
    ))
    reg.register(Resource(
        group="", version="v1", kind="Binding", plural="bindings", namespaced=True, verbs=("create",),
        definition=definition("", "v1", "Binding"), validate=validate_binding,
    ))
