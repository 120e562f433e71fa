"""core/v1 Node: validation (taints, podCIDRs, resources), strategy and printNode."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.registry import Column, Resource
from kubelite.api.schema import definition_for_kind

ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def default_node(obj: dict) -> None:
    """SetDefaults_NodeStatus: allocatable defaults to capacity."""
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])


def validate_taints(taints: list, path: str) -> list[FieldError]:
    """validateNodeTaints: key, value, effect, unique by (key, effect)."""
    errs: list[FieldError] = []
    seen: set = set()
    for i, t in enumerate(taints or []):
        t = t or {}
        p = f"{path}[{i}]"
        key, eff = t.get("key") or "", t.get("effect") or ""
        errs += [ferr.invalid(f"{p}.key", key, m) for m in common.qualified_name(key)]
        msgs = common.label_value(t.get("value") or "")
        if msgs:
            errs.append(ferr.invalid(f"{p}.value", t.get("value") or "", ";".join(msgs)))
        if not eff:
            errs.append(ferr.required(f"{p}.effect"))
        elif eff not in _TAINT_EFFECTS:
            errs.append(ferr.not_supported(f"{p}.effect", eff, _TAINT_EFFECTS))
        if (key, eff) in seen:
            e = ferr.duplicate(p, t)
            e.detail = "taints must be unique by key and effect pair"
            errs.append(e)
            continue
        seen.add((key, eff))
    return errs


def _validate_node_resources(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    status = obj.get("status") or {}
    for field in ("capacity", "allocatable"):
        for k, v in sorted((status.get(field) or {}).items()):
            errs += pod.validate_quantity_value(k, v, f"status.{field}.{k}")
    return errs


def validate_node(obj: dict) -> list[FieldError]:
    """ValidateNode: note upstream reports spec taints under `metadata.taints`."""
    errs: list[FieldError] = []
    spec = obj.get("spec") or {}
    if spec.get("taints"):
        errs += validate_taints(spec["taints"], "metadata.taints")
    errs += _validate_node_resources(obj)
    cidrs = spec.get("podCIDRs") or []
    for i, c in enumerate(cidrs):
        errs += common.cidr_errors(c, f"spec.podCIDRs[{i}]")
    if len(cidrs) > 1:
        if len(cidrs) > 2 or (":" in cidrs[0]) == (":" in cidrs[1]):
            errs.append(ferr.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
    return errs


def validate_node_update(new: dict, old: dict) -> list[FieldError]:
    """ValidateNodeUpdate: podCIDRs and providerID are set-once."""
    errs = common.validate_object_meta_update(new, old)
    errs += _validate_node_resources(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    seen: list = []
    for i, a in enumerate((new.get("status") or {}).get("addresses") or []):
        if a in seen:
            errs.append(ferr.duplicate(f"status.addresses[{i}]", a))
        seen.append(a)
    old_cidrs, new_cidrs = os_.get("podCIDRs") or [], ns.get("podCIDRs") or []
    msg = 'node updates may not change podCIDR except from "" to valid'
    if old_cidrs:
        if len(old_cidrs) != len(new_cidrs):
            errs.append(ferr.forbidden("spec.podCIDRs", msg))
        else:
            errs += [ferr.forbidden("spec.podCIDRs", msg) for o, n in zip(old_cidrs, new_cidrs, strict=True) if o != n]
    if os_.get("providerID") and os_.get("providerID") != ns.get("providerID"):
        errs.append(ferr.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    if ns.get("taints"):
        errs += validate_taints(ns["taints"], "metadata.taints")
    if ns.get("externalID") != os_.get("externalID"):
        errs.append(ferr.forbidden("spec.externalID", "may not be updated"))
    return errs


def prepare_node_update(new: dict, old: dict) -> None:
    """PrepareForUpdate: the main resource never changes status."""
    if "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)


def node_roles(obj: dict) -> list[str]:
    """findNodeRoles: node-role.kubernetes.io/<role> labels and kubernetes.io/role=<role>."""
    roles = set()
    for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items():
        if k.startswith(ROLE_PREFIX) and k[len(ROLE_PREFIX):]:
            roles.add(k[len(ROLE_PREFIX):])
        elif k == ROLE_LABEL and v:
            roles.add(v)
    return sorted(roles)


def node_status_text(obj: dict) -> str:
    """Ready / NotReady / Unknown, plus SchedulingDisabled when cordoned."""
    status = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if (obj.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _address(obj: dict, kind: str) -> str:
    for a in (obj.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return a.get("address") or ""
    return "<none>"


def node_row(obj: dict) -> list:
    info = (obj.get("status") or {}).get("nodeInfo") or {}
    return [node_status_text(obj), ",".join(node_roles(obj)) or "<none>", common.creation_age(obj),
            info.get("kubeletVersion") or "", _address(obj, "InternalIP"), _address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def node_resource() -> Resource:
    info, status = "io.k8s.api.core.v1.NodeSystemInfo", "io.k8s.api.core.v1.NodeStatus"
    return Resource(
        group="", version="v1", kind="Node", plural="nodes", namespaced=False,
        short_names=("no",), subresources=("status", "proxy"),
        definition=definition_for_kind("", "v1", "Node") or "",
        columns=(
            Column("Status", "string", description="The status of the node"),
            Column("Roles", "string", description="The roles of the node"),
            common.age_column(),
            Column("Version", "string", description=common.column_doc(info, "kubeletVersion")),
            Column("Internal-IP", "string", priority=1, description=common.column_doc(status, "addresses")),
            Column("External-IP", "string", priority=1, description=common.column_doc(status, "addresses")),
            Column("OS-Image", "string", priority=1, description=common.column_doc(info, "osImage")),
            Column("Kernel-Version", "string", priority=1, description=common.column_doc(info, "kernelVersion")),
            Column("Container-Runtime", "string", priority=1, description=common.column_doc(info, "containerRuntimeVersion")),
        ),
        row=node_row, default=default_node, validate=validate_node, validate_update=validate_node_update,
        prepare_update=prepare_node_update, name_rule="subdomain",
    )


def resources() -> list[Resource]:
    return [node_resource()]
