"""scheduling.k8s.io/v1: PriorityClass, plus the two built-in system classes the server bootstraps."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

HIGHEST_USER_DEFINABLE_PRIORITY = 1000000000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PRIORITY_CLASS_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
PREEMPTION_POLICIES = ["Never", "PreemptLowerPriority"]

_SYSTEM_CLASSES = {
    SYSTEM_CLUSTER_CRITICAL: (SYSTEM_CRITICAL_PRIORITY, "Used for system critical pods that must run in the cluster, "
                              "but can be moved to another node if necessary."),
    SYSTEM_NODE_CRITICAL: (SYSTEM_CRITICAL_PRIORITY + 1000, "Used for system critical pods that must not be moved "
                           "from their current node."),
}


def builtin_priority_classes() -> list[dict]:
    """The system PriorityClasses upstream's apiserver creates at startup (SystemPriorityClasses())."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "globalDefault": False,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        for name, (value, description) in _SYSTEM_CLASSES.items()
    ]


def default_priorityclass(obj: Obj) -> None:
    """SetDefaults_PriorityClass."""
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def _known_system_class_error(obj: Obj) -> str:
    """IsKnownSystemPriorityClass's error, or "" when the class is one of the built-ins."""
    name = (obj.get("metadata") or {}).get("name") or ""
    if name not in _SYSTEM_CLASSES:
        return f"{name} is not a known system priority class"
    value = _SYSTEM_CLASSES[name][0]
    if obj.get("value") != value:
        return f"value of {name} PriorityClass must be {value}"
    if bool(obj.get("globalDefault")):
        return f"globalDefault of {name} PriorityClass must be false"
    return ""


def validate_priorityclass(obj: Obj) -> list[FieldError]:
    """ValidatePriorityClass."""
    errs = common.validate_object_meta(obj, False, "subdomain")
    name = (obj.get("metadata") or {}).get("name") or ""
    value = obj.get("value") or 0
    if name.startswith(SYSTEM_PRIORITY_CLASS_PREFIX):
        err = _known_system_class_error(obj)
        if err:
            errs.append(ferr.forbidden("metadata.name", f"priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' "
                                       f"prefix are reserved for system use only. error: {err}"))
    elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(ferr.forbidden("value", f"maximum allowed value of a user defined priority is "
                                   f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        errs.append(ferr.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    return errs


def validate_priorityclass_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidatePriorityClassUpdate: value and preemptionPolicy are immutable."""
    errs: list[FieldError] = []
    if new.get("value") != old.get("value"):
        errs.append(ferr.forbidden("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errs.append(ferr.invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
    return errs


def priorityclass_row(obj: Obj) -> list:
    return [obj.get("value") or 0, bool(obj.get("globalDefault")), age_cell(obj), obj.get("preemptionPolicy") or ""]


PRIORITYCLASS_COLUMNS = (
    Column("Value", "integer", description="value represents the integer value of this priority class."),
    Column("Global-Default", "boolean", description="globalDefault specifies whether this PriorityClass should be "
           "considered as the default priority for pods that do not have any priority class."),
    age_column(),
    Column("PreemptionPolicy", "string", description="preemptionPolicy is the Policy for preempting pods with lower "
           "priority."),
)


def register(reg: Registry) -> None:
    g, v = "scheduling.k8s.io", "v1"
    reg.register(Resource(
        group=g, version=v, kind="PriorityClass", plural="priorityclasses", namespaced=False, short_names=("pc",),
        definition=definition(g, v, "PriorityClass"), columns=PRIORITYCLASS_COLUMNS, row=priorityclass_row,
        default=default_priorityclass, validate=validate_priorityclass,
        validate_update=validate_priorityclass_update,
    ))
