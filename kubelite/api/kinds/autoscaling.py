"""autoscaling/v2 (stored, preferred) and autoscaling/v1 HorizontalPodAutoscaler.

Mirrors pkg/apis/autoscaling/v2/defaults.go, pkg/apis/autoscaling/validation, the printer, and
pkg/apis/autoscaling/v1/conversion.go: v1's targetCPUUtilizationPercentage is the v2 CPU
Utilization metric; other v2 metrics, current metrics, conditions and behavior ride along in v1
as JSON annotations so that a round trip through v1 loses nothing.
"""

from __future__ import annotations

import copy

import orjson

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition, spec_of
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "autoscaling"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
DEFAULT_CPU_UTILIZATION = 80

METRIC_SOURCE_TYPES = ["Object", "Pods", "Resource", "External", "ContainerResource"]
_SOURCE_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                 "ContainerResource": "containerResource"}


def _cpu_metric(utilization: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                      "averageUtilization": utilization}}}


def _scale_up_defaults() -> dict:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]}


def _scale_down_defaults() -> dict:
    return {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _merge_rules(given: dict | None, defaults: dict) -> dict:
    """copyHPAScalingRules: the user's non-nil fields over the defaults."""
    if given is None:
        return defaults
    out = dict(defaults)
    for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
        if given.get(key) is not None:
            out[key] = given[key]
    return out


def default_hpa_v2(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (v2)."""
    spec = spec_of(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _merge_rules(behavior.get("scaleUp"), _scale_up_defaults())
        behavior["scaleDown"] = _merge_rules(behavior.get("scaleDown"), _scale_down_defaults())


def default_hpa_v1(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (v1): minReplicas; the CPU default is applied in conversion."""
    spec = spec_of(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# ---------------------------------------------------------------------------------------------
# Validation (on the v2 shape)


def _validate_cross_version_ref(ref: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("kind", "name"):
        value = ref.get(key) or ""
        if not value:
            errs.append(ferr.required(f"{path}.{key}", ""))
        else:
            errs.extend(ferr.invalid(f"{path}.{key}", value, m) for m in common.path_segment_name(value))
    return errs


def _positive_quantity(value, path: str) -> list[FieldError]:
    try:
        ok = common.parse_quantity(value) > 0
    except ValueError:
        ok = True  # malformed quantities are reported by schema validation
    return [] if ok else [ferr.invalid(path, value, "must be positive")]


def _validate_target(target: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = target.get("type") or ""
    if not t:
        errs.append(ferr.required(f"{path}.type", "must specify a metric target type"))
    if t not in ("Utilization", "Value", "AverageValue"):
        errs.append(ferr.invalid(f"{path}.type", t, "must be either Utilization, Value, or AverageValue"))
    if target.get("value") is not None:
        errs.extend(_positive_quantity(target["value"], f"{path}.value"))
    if target.get("averageValue") is not None:
        errs.extend(_positive_quantity(target["averageValue"], f"{path}.averageValue"))
    au = target.get("averageUtilization")
    if au is not None and au < 1:
        errs.append(ferr.invalid(f"{path}.averageUtilization", au, "must be greater than 0"))
    return errs


def _validate_metric(metric: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = metric.get("type") or ""
    if not t:
        errs.append(ferr.required(f"{path}.type", "must specify a metric source type"))
    present = [f for f in _SOURCE_FIELD.values() if metric.get(f) is not None]
    expected = _SOURCE_FIELD.get(t)
    if expected is None:
        errs.append(ferr.not_supported(f"{path}.type", t, METRIC_SOURCE_TYPES))
        return errs
    if expected not in present:
        errs.append(ferr.required(f"{path}.{expected}", "must populate information for the given metric source"))
    for other in present:
        if other != expected:
            errs.append(ferr.forbidden(f"{path}.{other}", "must populate the given metric source only"))
    src = metric.get(expected)
    if not isinstance(src, dict):
        return errs
    p = f"{path}.{expected}"
    if expected in ("resource", "containerResource"):
        if not src.get("name"):
            errs.append(ferr.required(f"{p}.name", "must specify a resource name"))
        if expected == "containerResource" and not src.get("container"):
            errs.append(ferr.required(f"{p}.container", "must specify a container"))
        target = src.get("target") or {}
        errs.extend(_validate_target(target, f"{p}.target"))
        if target.get("averageUtilization") is None and target.get("averageValue") is None:
            errs.append(ferr.required(f"{p}.target.averageUtilization",
                                      "must set either a target raw value or a target utilization"))
        if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
            errs.append(ferr.forbidden(f"{p}.target.averageValue",
                                       "may not set both a target raw value and a target utilization"))
    else:
        if not (src.get("metric") or {}).get("name"):
            errs.append(ferr.required(f"{p}.metric.name", "must specify a metric name"))
        errs.extend(_validate_target(src.get("target") or {}, f"{p}.target"))
        if expected == "object":
            errs.extend(_validate_cross_version_ref(src.get("describedObject") or {}, f"{p}.describedObject"))
    return errs


def validate_hpa_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateHorizontalPodAutoscalerSpec (scale-to-zero disabled: minReplicas >= 1)."""
    errs: list[FieldError] = []
    min_r, max_r = spec.get("minReplicas"), spec.get("maxReplicas") or 0
    if min_r is not None and min_r < 1:
        errs.append(ferr.invalid(f"{path}.minReplicas", min_r, "must be greater than or equal to 1"))
    if max_r < 1:
        errs.append(ferr.invalid(f"{path}.maxReplicas", max_r, "must be greater than 0"))
    if min_r is not None and max_r < min_r:
        errs.append(ferr.invalid(f"{path}.maxReplicas", max_r, "must be greater than or equal to `minReplicas`"))
    ref_errs = _validate_cross_version_ref(spec.get("scaleTargetRef") or {}, f"{path}.scaleTargetRef")
    if ref_errs:
        errs.extend(ref_errs)
    else:
        for i, metric in enumerate(spec.get("metrics") or []):
            errs.extend(_validate_metric(metric or {}, f"{path}.metrics[{i}]"))
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key in ("scaleUp", "scaleDown"):
            rules = behavior.get(key) or {}
            rp = f"{path}.behavior.{key}"
            sp = rules.get("selectPolicy")
            if sp is not None and sp not in ("Disabled", "Max", "Min"):
                errs.append(ferr.not_supported(f"{rp}.selectPolicy", sp, ["Disabled", "Max", "Min"]))
            sw = rules.get("stabilizationWindowSeconds")
            if sw is not None and not 0 <= sw <= 3600:
                errs.append(ferr.invalid(f"{rp}.stabilizationWindowSeconds", sw,
                                         "must be less than or equal to 3600" if sw > 0 else "must be greater than or equal to zero"))
            for i, pol in enumerate(rules.get("policies") or []):
                pp = f"{rp}.policies[{i}]"
                if pol.get("type") not in ("Pods", "Percent"):
                    errs.append(ferr.not_supported(f"{pp}.type", pol.get("type") or "", ["Percent", "Pods"]))
                if (pol.get("value") or 0) <= 0:
                    errs.append(ferr.invalid(f"{pp}.value", pol.get("value") or 0, "must be greater than zero"))
                ps = pol.get("periodSeconds") or 0
                if ps <= 0:
                    errs.append(ferr.invalid(f"{pp}.periodSeconds", ps, "must be greater than zero"))
                elif ps > 1800:
                    errs.append(ferr.invalid(f"{pp}.periodSeconds", ps, "must be less than or equal to 1800"))
    return errs


def validate_hpa(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_hpa_spec(to_v2(obj).get("spec") or {}))
    return errs


def validate_hpa_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_hpa_spec(to_v2(new).get("spec") or {})


def prepare_create_hpa(obj: Obj) -> None:
    if (obj.get("apiVersion") or "").endswith("/v1"):
        obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}
    else:
        obj["status"] = {"desiredReplicas": 0}


# ---------------------------------------------------------------------------------------------
# Conversion v1 <-> v2


def _is_cpu_utilization(metric: dict) -> bool:
    res = metric.get("resource") or {}
    target = res.get("target") or {}
    return (metric.get("type") == "Resource" and res.get("name") == "cpu" and target.get("type") == "Utilization"
            and target.get("averageUtilization") is not None)


def _load_annotation(anns: dict, key: str) -> list | dict | None:
    raw = anns.pop(key, None)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def to_v2(obj: Obj) -> Obj:
    """Convert_v1_HorizontalPodAutoscaler_To_autoscaling (v2 is the hub); v2 input is returned as is."""
    if obj.get("apiVersion") != f"{GROUP}/v1":
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"] = f"{GROUP}/v2"
    meta = out.setdefault("metadata", {})
    anns = dict(meta.get("annotations") or {})
    spec = out.get("spec") or {}
    metrics = []
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        metrics.append(_cpu_metric(target))
    metrics.extend(_load_annotation(anns, METRICS_ANNOTATION) or [])
    if not metrics:
        metrics = [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    spec["metrics"] = metrics
    behavior = _load_annotation(anns, BEHAVIOR_ANNOTATION)
    if behavior:
        spec["behavior"] = behavior
    out["spec"] = spec
    status = out.get("status")
    if isinstance(status, dict):
        current = []
        cpu = status.pop("currentCPUUtilizationPercentage", None)
        if cpu is not None:
            current.append({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}})
        current.extend(_load_annotation(anns, CURRENT_METRICS_ANNOTATION) or [])
        if current:
            status["currentMetrics"] = current
        conditions = _load_annotation(anns, CONDITIONS_ANNOTATION)
        if conditions:
            status["conditions"] = conditions
    else:
        _load_annotation(anns, CURRENT_METRICS_ANNOTATION)
        _load_annotation(anns, CONDITIONS_ANNOTATION)
    if anns:
        meta["annotations"] = anns
    else:
        meta.pop("annotations", None)
    return out


def _dump(value) -> str:
    return orjson.dumps(value).decode()


def to_v1(obj: Obj) -> Obj:
    """Convert_autoscaling_HorizontalPodAutoscaler_To_v1."""
    if obj.get("apiVersion") == f"{GROUP}/v1":
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"] = f"{GROUP}/v1"
    meta = out.setdefault("metadata", {})
    anns = dict(meta.get("annotations") or {})
    spec = out.get("spec") or {}
    other = []
    for metric in spec.pop("metrics", None) or []:
        if _is_cpu_utilization(metric) and "targetCPUUtilizationPercentage" not in spec:
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"]["averageUtilization"]
        else:
            other.append(metric)
    if other:
        anns[METRICS_ANNOTATION] = _dump(other)
    behavior = spec.pop("behavior", None)
    if behavior:
        anns[BEHAVIOR_ANNOTATION] = _dump(behavior)
    out["spec"] = spec
    status = out.get("status")
    if isinstance(status, dict):
        other_current = []
        for metric in status.pop("currentMetrics", None) or []:
            res = metric.get("resource") or {}
            util = (res.get("current") or {}).get("averageUtilization")
            if (metric.get("type") == "Resource" and res.get("name") == "cpu" and util is not None
                    and "currentCPUUtilizationPercentage" not in status):
                status["currentCPUUtilizationPercentage"] = util
            else:
                other_current.append(metric)
        if other_current:
            anns[CURRENT_METRICS_ANNOTATION] = _dump(other_current)
        conditions = status.pop("conditions", None)
        if conditions:
            anns[CONDITIONS_ANNOTATION] = _dump(conditions)
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    if anns:
        meta["annotations"] = anns
    return out


def convert_hpa(obj: Obj, to_version: str) -> Obj:
    """Registry convert hook: to "v1"/"autoscaling/v1" or "v2"/"autoscaling/v2"."""
    version = to_version.rsplit("/", 1)[-1]
    if version == "v1":
        return to_v1(obj)
    if version == "v2":
        return to_v2(obj)
    raise ValueError(f"cannot convert HorizontalPodAutoscaler to {to_version}")


# ---------------------------------------------------------------------------------------------
# Printer (always on the v2 shape)


def _q(value) -> str:
    return common.canonical_quantity(value) if value is not None else "<unknown>"


def format_hpa_metrics(specs: list, statuses: list) -> str:
    """formatHPAMetrics."""
    if not specs:
        return "<none>"
    items: list[str] = []
    for i, spec in enumerate(specs):
        status = statuses[i] if i < len(statuses) else {}
        t = spec.get("type")
        if t in ("External", "Object"):
            key = t[0].lower() + t[1:]
            target = (spec.get(key) or {}).get("target") or {}
            current = (status.get(key) or {}).get("current") if status.get(key) else None
            if target.get("averageValue") is not None:
                cur = _q(current.get("averageValue")) if current and current.get("averageValue") is not None else "<unknown>"
                items.append(f"{cur}/{_q(target['averageValue'])} (avg)")
            else:
                cur = _q(current.get("value")) if current else "<unknown>"
                items.append(f"{cur}/{_q(target.get('value') or 0)}")
        elif t == "Pods":
            target = (spec.get("pods") or {}).get("target") or {}
            current = (status.get("pods") or {}).get("current") if status.get("pods") else None
            cur = _q(current.get("averageValue") or 0) if current else "<unknown>"
            items.append(f"{cur}/{_q(target.get('averageValue') or 0)}")
        elif t in ("Resource", "ContainerResource"):
            key = "resource" if t == "Resource" else "containerResource"
            src = spec.get(key) or {}
            target = src.get("target") or {}
            st = status.get(key) if status.get("type") == t or status.get(key) else None
            current = (st or {}).get("current") if st else None
            name = src.get("name") or ""
            if target.get("averageValue") is not None:
                cur = _q(current.get("averageValue") or 0) if current is not None else "<unknown>"
                items.append(f"{name}: {cur}/{_q(target['averageValue'])}")
            else:
                cur = "<unknown>"
                if current is not None and current.get("averageUtilization") is not None:
                    cur = f"{current['averageUtilization']}%"
                tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
                items.append(f"{name}: {cur}/{tgt}")
        else:
            items.append("<unknown type>")
    if len(items) > 2:
        return ", ".join(items[:2]) + f" + {len(items) - 2} more..."
    return ", ".join(items)


def hpa_row(obj: Obj) -> list:
    v2 = to_v2(obj)
    spec, status = v2.get("spec") or {}, v2.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    min_r = spec.get("minReplicas")
    return [
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        format_hpa_metrics(spec.get("metrics") or [], status.get("currentMetrics") or []),
        str(min_r) if min_r is not None else "<unset>",
        spec.get("maxReplicas") or 0,
        status.get("currentReplicas") or 0,
        age_cell(obj),
    ]


HPA_COLUMNS = (
    Column("Reference", "string", description="scaleTargetRef points to the target resource to scale, and is used to "
           "the pods for which metrics should be collected, as well as to actually change the replica count."),
    Column("Targets", "string", description="metrics contains the specifications for which to use to calculate the "
           "desired replica count (the maximum replica count across all metrics will be used)."),
    Column("MinPods", "string", description="minReplicas is the lower limit for the number of replicas to which the "
           "autoscaler can scale down."),
    Column("MaxPods", "string", description="maxReplicas is the upper limit for the number of replicas to which the "
           "autoscaler can scale up."),
    Column("Replicas", "string", description="currentReplicas is current number of replicas of pods managed by this "
           "autoscaler, as last seen by the autoscaler."),
    age_column(),
)


def register(reg: Registry) -> None:
    common_args = dict(
        group=GROUP, kind="HorizontalPodAutoscaler", plural="horizontalpodautoscalers", namespaced=True,
        short_names=("hpa",), categories=("all",), subresources=("status",), columns=HPA_COLUMNS, row=hpa_row,
        validate=validate_hpa, validate_update=validate_hpa_update, prepare_create=prepare_create_hpa,
        storage_version="v2", convert=convert_hpa,
    )
    reg.register(Resource(version="v2", definition=definition(GROUP, "v2", "HorizontalPodAutoscaler"),
                          default=default_hpa_v2, **common_args))
    reg.register(Resource(version="v1", definition=definition(GROUP, "v1", "HorizontalPodAutoscaler"),
                          default=default_hpa_v1, preferred=False, **common_args))
