"""core/v1 ResourceQuota and LimitRange: validation, defaults and printers."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.kinds.common import canonical_quantity, parse_quantity
from kubelite.api.registry import Column, Resource
from kubelite.api.schema import definition_for_kind

STANDARD_QUOTA_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
    "resourcequotas", "services", "replicationcontrollers", "secrets", "persistentvolumeclaims", "configmaps",
    "services.nodeports", "services.loadbalancers",
}
QUOTA_SCOPES = {"Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass"}


def _is_standard_quota_resource(name: str) -> bool:
    return (name in STANDARD_QUOTA_RESOURCES or name.startswith("hugepages-")
            or name.startswith("requests.hugepages-"))


def validate_quota_resource_name(name: str, path: str) -> list[FieldError]:
    """ValidateResourceQuotaResourceName."""
    errs = pod.validate_resource_name(name, path)
    if "/" not in name and not _is_standard_quota_resource(name):
        errs.append(ferr.invalid(path, name, "must be a standard resource for quota"))
    return errs


def _validate_quota_list(rl: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for k in sorted(rl or {}):
        errs += validate_quota_resource_name(k, f"{path}[{k}]")
        errs += pod.validate_quantity_value(k, rl[k], f"{path}[{k}]")
    return errs


def _validate_quota_spec(spec: dict, path: str) -> list[FieldError]:
    errs = _validate_quota_list(spec.get("hard") or {}, f"{path}.hard")
    scopes = spec.get("scopes") or []
    for s in scopes:
        if s not in QUOTA_SCOPES:
            errs.append(ferr.invalid(f"{path}.scopes", scopes, "unsupported scope"))
    for a, b in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if a in scopes and b in scopes:
            errs.append(ferr.invalid(f"{path}.scopes", scopes, "conflicting scopes"))
    ss = spec.get("scopeSelector")
    if isinstance(ss, dict):
        sp = f"{path}.scopeSelector.matchExpressions"
        for req in ss.get("matchExpressions") or []:
            if req.get("scopeName") not in QUOTA_SCOPES:
                errs.append(ferr.invalid(f"{sp}.scopeName", req.get("scopeName") or "", "unsupported scope"))
            op = req.get("operator")
            if op in ("In", "NotIn"):
                if not req.get("values"):
                    errs.append(ferr.required(f"{sp}.values", "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
            elif op in ("Exists", "DoesNotExist"):
                if req.get("values"):
                    errs.append(ferr.invalid(f"{sp}.values", req["values"], "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
            else:
                errs.append(ferr.invalid(f"{sp}.operator", op or "", "not a valid selector operator"))
    return errs


def default_quota(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        pod._default_resource_list(spec.get("hard"))


def validate_quota(obj: dict) -> list[FieldError]:
    """ValidateResourceQuota."""
    errs = _validate_quota_spec(obj.get("spec") or {}, "spec")
    status = obj.get("status") or {}
    errs += _validate_quota_list(status.get("hard") or {}, "status.hard")
    errs += _validate_quota_list(status.get("used") or {}, "status.used")
    return errs


def validate_quota_update(new: dict, old: dict) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    errs += _validate_quota_spec(new.get("spec") or {}, "spec")
    ns, os_ = (new.get("spec") or {}).get("scopes") or [], (old.get("spec") or {}).get("scopes") or []
    if set(ns) != set(os_):
        errs.append(ferr.invalid("spec.scopes", ns, "field is immutable"))
    return errs


def prepare_quota_create(obj: dict) -> None:
    obj["status"] = {}


def prepare_quota_update(new: dict, old: dict) -> None:
    new["status"] = old.get("status") or {}


def quota_row(obj: dict) -> list:
    """printResourceQuota: `name: used/hard` for each hard resource; limits.* go to the LIMIT column."""
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    request, limit = [], []
    for name in sorted(hard):
        u = canonical_quantity(used[name]) if name in used else "0"
        cell = f"{name}: {u}/{canonical_quantity(hard[name])}"
        parts = name.split(".")
        (limit if len(parts) > 1 and parts[0] == "limits" else request).append(cell)
    return [", ".join(request), ", ".join(limit), common.creation_age(obj)]


def quota_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="ResourceQuota", plural="resourcequotas", namespaced=True,
        short_names=("quota",), subresources=("status",),
        definition=definition_for_kind("", "v1", "ResourceQuota") or "",
        columns=(
            Column("Request", "string", description="Request represents a minimum amount of cpu/memory that a container may consume."),
            Column("Limit", "string", description="Limits control the maximum amount of cpu/memory that a container may use "
                   "independent of contention on the node."),
            common.age_column(),
        ),
        row=quota_row, default=default_quota, validate=validate_quota, validate_update=validate_quota_update,
        prepare_create=prepare_quota_create, prepare_update=prepare_quota_update,
    )


# ---------------------------------------------------------------------------------------------
# LimitRange

LIMIT_TYPES = {"Pod", "Container", "PersistentVolumeClaim"}


def default_limit_range(obj: dict) -> None:
    """SetDefaults_LimitRangeItem: for Container limits, default <- max, defaultRequest <- default, then min."""
    for item in (obj.get("spec") or {}).get("limits") or []:
        if not isinstance(item, dict):
            continue
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            pod._default_resource_list(item.get(key))
        if item.get("type") != "Container":
            continue
        default = item.setdefault("default", {}) or {}
        default_request = item.setdefault("defaultRequest", {}) or {}
        item["default"], item["defaultRequest"] = default, default_request
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            default_request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            default_request.setdefault(k, v)


def _limit_resource_name(ltype: str, name: str, path: str) -> list[FieldError]:
    if ltype in ("Pod", "Container"):
        errs = pod.validate_resource_name(name, path)
        if "/" not in name and name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
            errs.append(ferr.invalid(path, name, "must be a standard resource for containers"))
        return errs
    return pod.validate_resource_name(name, path)


def validate_limit_range(obj: dict) -> list[FieldError]:
    """ValidateLimitRange: names, one item per type, min <= defaultRequest <= default <= max."""
    errs: list[FieldError] = []
    seen_types: set = set()
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        item = item or {}
        p = f"spec.limits[{i}]"
        ltype = item.get("type") or ""
        tmsgs = common.qualified_name(ltype)
        errs += [ferr.invalid(f"{p}.type", ltype, m) for m in tmsgs]
        if not tmsgs and "/" not in ltype and ltype not in LIMIT_TYPES:
            errs.append(ferr.invalid(f"{p}.type", ltype, "must be a standard limit type or fully qualified"))
        if ltype in seen_types:
            errs.append(ferr.duplicate(f"{p}.type", ltype))
        seen_types.add(ltype)
        groups: dict[str, dict] = {}
        for key in ("max", "min"):
            groups[key] = item.get(key) or {}
            for k in sorted(groups[key]):
                errs += _limit_resource_name(ltype, k, f"{p}.{key}[{k}]")
        if ltype == "Pod":
            for key in ("default", "defaultRequest"):
                if item.get(key):
                    errs.append(ferr.forbidden(f"{p}.{key}", "may not be specified when `type` is 'Pod'"))
            groups["default"], groups["defaultRequest"] = {}, {}
        else:
            for key in ("default", "defaultRequest"):
                groups[key] = item.get(key) or {}
                for k in sorted(groups[key]):
                    errs += _limit_resource_name(ltype, k, f"{p}.{key}[{k}]")
        if ltype == "PersistentVolumeClaim" and "storage" not in groups["min"] and "storage" not in groups["max"]:
            errs.append(ferr.required(f"{p}.limits", "either minimum or maximum storage value is required, but neither was provided"))
        groups["maxLimitRequestRatio"] = item.get("maxLimitRequestRatio") or {}
        for k in sorted(groups["maxLimitRequestRatio"]):
            errs += _limit_resource_name(ltype, k, f"{p}.maxLimitRequestRatio[{k}]")
        keys = sorted(set().union(*(set(g) for g in groups.values())))
        for k in keys:
            q: dict = {}
            for g, vals in groups.items():
                if k in vals:
                    try:
                        q[g] = parse_quantity(vals[k])
                    except ValueError:
                        pass
            s = {g: canonical_quantity(groups[g][k]) for g in q}
            if "min" in q and "max" in q and q["min"] > q["max"]:
                errs.append(ferr.invalid(f"{p}.min[{k}]", s["min"], f"min value {s['min']} is greater than max value {s['max']}"))
            if "defaultRequest" in q and "min" in q and q["min"] > q["defaultRequest"]:
                errs.append(ferr.invalid(f"{p}.defaultRequest[{k}]", s["defaultRequest"],
                                         f"min value {s['min']} is greater than default request value {s['defaultRequest']}"))
            if "defaultRequest" in q and "max" in q and q["defaultRequest"] > q["max"]:
                errs.append(ferr.invalid(f"{p}.defaultRequest[{k}]", s["defaultRequest"],
                                         f"default request value {s['defaultRequest']} is greater than max value {s['max']}"))
            if "defaultRequest" in q and "default" in q and q["defaultRequest"] > q["default"]:
                errs.append(ferr.invalid(f"{p}.defaultRequest[{k}]", s["defaultRequest"],
                                         f"default request value {s['defaultRequest']} is greater than default limit value {s['default']}"))
            if "default" in q and "min" in q and q["min"] > q["default"]:
                errs.append(ferr.invalid(f"{p}.default[{k}]", s["min"], f"min value {s['min']} is greater than default value {s['default']}"))
            if "default" in q and "max" in q and q["default"] > q["max"]:
                errs.append(ferr.invalid(f"{p}.default[{k}]", s["max"], f"default value {s['default']} is greater than max value {s['max']}"))
            if "maxLimitRequestRatio" in q and q["maxLimitRequestRatio"] < 1:
                r = s["maxLimitRequestRatio"]
                errs.append(ferr.invalid(f"{p}.maxLimitRequestRatio[{k}]", r, f"ratio {r} is less than 1"))
            if "maxLimitRequestRatio" in q and "min" in q and "max" in q and q["min"] > 0:
                limit = float(q["max"]) / float(q["min"])
                if float(q["maxLimitRequestRatio"]) > limit:
                    r = s["maxLimitRequestRatio"]
                    errs.append(ferr.invalid(f"{p}.maxLimitRequestRatio[{k}]", r, f"ratio {r} is greater than max/min = {limit:f}"))
            if not pod.is_overcommit_allowed(k) and "default" in q and "defaultRequest" in q and q["default"] != q["defaultRequest"]:
                errs.append(ferr.invalid(f"{p}.defaultRequest[{k}]", s["defaultRequest"],
                                         f"default value {s['default']} must equal to defaultRequest value {s['defaultRequest']} in {k}"))
    return errs


def limit_range_resource() -> Resource:
    """No upstream printer: kubectl shows NAME and CREATED AT (the generic table)."""
    return Resource(
        group="", version="v1", kind="LimitRange", plural="limitranges", namespaced=True,
        short_names=("limits",),
        definition=definition_for_kind("", "v1", "LimitRange") or "",
        default=default_limit_range, validate=validate_limit_range,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old) + validate_limit_range(new),
    )


def resources() -> list[Resource]:
    return [quota_resource(), limit_range_resource()]
