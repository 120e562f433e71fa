"""apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision.

Mirrors pkg/apis/apps/v1/defaults.go, pkg/apis/apps/validation/validation.go, the strategies in
pkg/registry/apps/*/strategy.go and the printers in pkg/printers/internalversion/printers.go.
The small helpers at the top (Go-style values in error messages, IntOrString checks, container
cells) are shared by the other group modules of this package.
"""

from __future__ import annotations

from typing import Any

from kubelite.api import errors as ferr
from kubelite.api import schema
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.registry import Column, Obj, Registry, Resource, ScaleSpec

# ---------------------------------------------------------------------------------------------
# Shared helpers (used by batch, policy, networking, ... as well)


class GoRepr:
    """A value rendered verbatim in a field error, as Go's %#v would print a struct."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoRepr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _go_str(s: Any) -> str:
    return ferr.go_value(s if isinstance(s, str) else "")


def _go_strings(values: Any, type_name: str = "[]string") -> str:
    if values is None:
        return f"{type_name}(nil)"
    return type_name + "{" + ", ".join(_go_str(v) for v in values) + "}"


def _go_string_map(m: Any) -> str:
    if m is None:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(f"{_go_str(k)}:{_go_str(m[k])}" for k in sorted(m)) + "}"


def go_label_selector(sel: Any) -> GoRepr:
    """%#v of a (dereferenced) metav1.LabelSelector, as in `spec.selector: Invalid value: ...`."""
    if not isinstance(sel, dict):
        return GoRepr("null")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        exprs_s = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = [
            f"v1.LabelSelectorRequirement{{Key:{_go_str(e.get('key'))}, Operator:{_go_str(e.get('operator'))}, "
            f"Values:{_go_strings(e.get('values'))}}}"
            for e in exprs
        ]
        exprs_s = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{_go_string_map(sel.get('matchLabels'))}, MatchExpressions:{exprs_s}}}")


def go_intstr(value: Any) -> GoRepr:
    """%#v of an intstr.IntOrString value (its String() has a pointer receiver, so Go prints the struct)."""
    if isinstance(value, str):
        return GoRepr(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_go_str(value)}}}")
    n = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return GoRepr(f'intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:""}}')


def intstr_value(value: Any) -> int:
    """getIntOrPercentValue: the number of a valid percent, else the int value (0 for junk)."""
    if isinstance(value, str):
        if not common.is_valid_percent(value):
            return int(value[:-1])
        try:
            return int(value)
        except ValueError:
            return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def validate_positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    """ValidatePositiveIntOrPercent."""
    if isinstance(value, str):
        return [ferr.invalid(path, go_intstr(value), m) for m in common.is_valid_percent(value)]
    if isinstance(value, int) and not isinstance(value, bool):
        return common.non_negative(value, path)
    return [ferr.invalid(path, go_intstr(value), "must be an integer or percentage (e.g '5%%')")]


def not_more_than_100_percent(value: Any, path: str) -> list[FieldError]:
    """IsNotMoreThan100Percent."""
    if isinstance(value, str) and not common.is_valid_percent(value) and int(value[:-1]) > 100:
        return [ferr.invalid(path, go_intstr(value), "must not be greater than 100%")]
    return []


def semantic(value: Any) -> Any:
    """Normalize for apiequality.Semantic.DeepEqual: nil and empty maps/slices compare equal."""
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    return semantic(a) == semantic(b)


def immutable_selector(new: Obj, old: Obj, path: str = "spec.selector",
                       get=lambda o: (o.get("spec") or {}).get("selector")) -> list[FieldError]:
    """ValidateImmutableField on a *metav1.LabelSelector."""
    n, o = get(new), get(old)
    if not semantic_equal(n, o):
        return [ferr.invalid(path, go_label_selector(n), "field is immutable")]
    return []


def container_cells(pod_spec: Any) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma separated."""
    containers = (pod_spec or {}).get("containers") or []
    return (",".join(c.get("name") or "" for c in containers), ",".join(c.get("image") or "" for c in containers))


def selector_string(sel: Any) -> str:
    """labels.Selector.String() of LabelSelectorAsSelector(sel): "" when nil or empty."""
    if not sel:
        return ""
    s = common.format_label_selector(sel)
    return "" if s == "<none>" else s


def meta(obj: Obj) -> dict:
    return obj.setdefault("metadata", {})


def spec_of(obj: Obj) -> dict:
    s = obj.get("spec")
    if not isinstance(s, dict):
        s = obj["spec"] = {}
    return s


def age_cell(obj: Obj) -> str:
    return common.age((obj.get("metadata") or {}).get("creationTimestamp"))


def bump_generation_on_annotations(new: Obj, old: Obj) -> None:
    """Deployment-style: annotation-only changes bump metadata.generation too (spec changes are generic)."""
    if semantic_equal(new.get("spec"), old.get("spec")) and not semantic_equal(
        (new.get("metadata") or {}).get("annotations"), (old.get("metadata") or {}).get("annotations")
    ):
        meta(new)["generation"] = ((old.get("metadata") or {}).get("generation") or 0) + 1


def definition(group: str, version: str, kind: str) -> str:
    return schema.definition_for_kind(group, version, kind) or ""


def age_column() -> Column:
    return Column("Age", "string", description="CreationTimestamp is a timestamp representing the server time when "
                  "this object was created.")


def _replicas(spec: dict) -> int:
    r = spec.get("replicas")
    return r if isinstance(r, int) and not isinstance(r, bool) else 0


WIDE_CONTAINERS = Column("Containers", "string", priority=1, description="Names of each container in the template.")
WIDE_IMAGES = Column("Images", "string", priority=1, description="Images referenced by each container in the template.")


def _wide_selector(description: str = "Label selector for pods.") -> Column:
    return Column("Selector", "string", priority=1, description=description)


# ---------------------------------------------------------------------------------------------
# Pod template checks shared by the replicated workloads


def _template(spec: dict) -> dict:
    t = spec.get("template")
    return t if isinstance(t, dict) else {}


def _template_labels(spec: dict) -> dict | None:
    return (_template(spec).get("metadata") or {}).get("labels")


def _restart_policy(spec: dict) -> str:
    return (_template(spec).get("spec") or {}).get("restartPolicy") or "Always"


def _validate_selector_required(spec: dict, path: str, what: str) -> list[FieldError]:
    """Selector required, valid, and non-empty ("empty selector is invalid for <what>")."""
    sel = spec.get("selector")
    if sel is None:
        return [ferr.required(f"{path}.selector", "")]
    errs = common.validate_label_selector(sel, f"{path}.selector")
    if not (sel.get("matchLabels") or {}) and not (sel.get("matchExpressions") or []):
        errs.append(ferr.invalid(f"{path}.selector", go_label_selector(sel), f"empty selector is invalid for {what}"))
    return errs


def _selector_matches_template(spec: dict, path: str) -> list[FieldError]:
    sel = spec.get("selector")
    if not sel or (not sel.get("matchLabels") and not sel.get("matchExpressions")):
        return []
    labels = _template_labels(spec)
    if not common.selector_matches(sel, labels):
        return [ferr.invalid(f"{path}.template.metadata.labels", labels or {},
                             "`selector` does not match template `labels`")]
    return []


def _validate_template_for_replicaset(spec: dict, path: str, kind_word: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (Deployment and ReplicaSet)."""
    errs = _selector_matches_template(spec, path)
    errs.extend(pod.validate_pod_template(_template(spec), f"{path}.template"))
    rp = _restart_policy(spec)
    if rp != "Always":
        errs.append(ferr.not_supported(f"{path}.template.spec.restartPolicy", rp, ["Always"]))
    if (_template(spec).get("spec") or {}).get("activeDeadlineSeconds") is not None:
        errs.append(ferr.forbidden(f"{path}.template.spec.activeDeadlineSeconds",
                                   f"activeDeadlineSeconds in {kind_word} is not Supported"))
    return errs


def _default_template(spec: dict) -> None:
    pod.default_pod_template(spec.setdefault("template", {}))


# ---------------------------------------------------------------------------------------------
# Deployment


def default_deployment(obj: Obj) -> None:
    """SetDefaults_Deployment."""
    spec = spec_of(obj)
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _validate_deployment_strategy(strategy: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = strategy.get("type")
    if t == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(ferr.forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            errs.append(ferr.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
            errs.extend(validate_positive_int_or_percent(mu, f"{path}.rollingUpdate.maxUnavailable"))
            errs.extend(validate_positive_int_or_percent(ms, f"{path}.rollingUpdate.maxSurge"))
            if intstr_value(mu) == 0 and intstr_value(ms) == 0:
                errs.append(ferr.invalid(f"{path}.rollingUpdate.maxUnavailable", go_intstr(mu),
                                         "may not be 0 when `maxSurge` is 0"))
            errs.extend(not_more_than_100_percent(mu, f"{path}.rollingUpdate.maxUnavailable"))
    else:
        errs.append(ferr.not_supported(path, GoRepr(_go_strategy(strategy)), ["Recreate", "RollingUpdate"]))
    return errs


def _go_strategy(strategy: dict) -> str:
    return f"apps.DeploymentStrategy{{Type:{_go_str(strategy.get('type') or '')}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}"


def validate_deployment_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateDeploymentSpec."""
    errs = common.non_negative(spec.get("replicas"), f"{path}.replicas")
    errs.extend(_validate_selector_required(spec, path, "deployment"))
    errs.extend(_validate_template_for_replicaset(spec, path, "ReplicaSet"))
    errs.extend(_validate_deployment_strategy(spec.get("strategy") or {}, f"{path}.strategy"))
    min_ready = spec.get("minReadySeconds") or 0
    errs.extend(common.non_negative(min_ready, f"{path}.minReadySeconds"))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(common.non_negative(spec["revisionHistoryLimit"], f"{path}.revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int):
        errs.extend(common.non_negative(pds, f"{path}.progressDeadlineSeconds"))
        if pds <= min_ready:
            errs.append(ferr.invalid(f"{path}.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    return errs


def validate_deployment(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_deployment_spec(obj.get("spec") or {}))
    return errs


def validate_deployment_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_deployment_spec(new.get("spec") or {})
    errs.extend(immutable_selector(new, old))
    return errs


def prepare_create_deployment(obj: Obj) -> None:
    obj["status"] = {}


def prepare_update_deployment(new: Obj, old: Obj) -> None:
    bump_generation_on_annotations(new, old)


def deployment_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = container_cells(_template(spec).get("spec"))
    return [
        f"{status.get('readyReplicas') or 0}/{_replicas(spec)}",
        status.get("updatedReplicas") or 0,
        status.get("availableReplicas") or 0,
        age_cell(obj),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


DEPLOYMENT_COLUMNS = (
    Column("Ready", "string", description="Number of the pod with ready state"),
    Column("Up-to-date", "string", description="Total number of non-terminated pods targeted by this deployment "
           "that have the desired template spec."),
    Column("Available", "string", description="Total number of available pods (ready for at least minReadySeconds) "
           "targeted by this deployment."),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    _wide_selector("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones "
                   "affected by this deployment."),
)


def scale_selector(obj: Obj) -> str:
    """Scale.status.selector: LabelSelectorAsSelector(spec.selector).String()."""
    return selector_string((obj.get("spec") or {}).get("selector"))


# ---------------------------------------------------------------------------------------------
# ReplicaSet


def default_replicaset(obj: Obj) -> None:
    """SetDefaults_ReplicaSet."""
    spec = spec_of(obj)
    spec.setdefault("replicas", 1)
    _default_template(spec)


def validate_replicaset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateReplicaSetSpec (upstream's empty-selector text says "deployment" here too)."""
    errs = common.non_negative(spec.get("replicas"), f"{path}.replicas")
    errs.extend(common.non_negative(spec.get("minReadySeconds") or 0, f"{path}.minReadySeconds"))
    errs.extend(_validate_selector_required(spec, path, "deployment"))
    errs.extend(_validate_template_for_replicaset(spec, path, "ReplicaSet"))
    return errs


def validate_replicaset(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_replicaset_spec(obj.get("spec") or {}))
    return errs


def validate_replicaset_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_replicaset_spec(new.get("spec") or {})
    errs.extend(immutable_selector(new, old))
    return errs


def prepare_create_replicaset(obj: Obj) -> None:
    obj["status"] = {"replicas": 0}


def replicaset_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = container_cells(_template(spec).get("spec"))
    return [
        _replicas(spec),
        status.get("replicas") or 0,
        status.get("readyReplicas") or 0,
        age_cell(obj),
        names,
        images,
        common.format_label_selector(spec.get("selector")),
    ]


REPLICASET_COLUMNS = (
    Column("Desired", "integer", description="Replicas is the number of desired pods."),
    Column("Current", "integer", description="Replicas is the most recently observed number of replicas."),
    Column("Ready", "integer", description="The number of ready replicas for this replica set."),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    _wide_selector("Selector is a label query over pods that should match the replica count."),
)


# ---------------------------------------------------------------------------------------------
# DaemonSet

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def default_daemonset(obj: Obj) -> None:
    """SetDefaults_DaemonSet."""
    spec = spec_of(obj)
    strategy = spec.setdefault("updateStrategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _validate_daemonset_update_strategy(strategy: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = strategy.get("type")
    if t == "OnDelete":
        return errs
    if t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            return [ferr.required(f"{path}.rollingUpdate", "")]
        p = f"{path}.rollingUpdate"
        mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
        errs.extend(validate_positive_int_or_percent(mu, f"{p}.maxUnavailable"))
        errs.extend(validate_positive_int_or_percent(ms, f"{p}.maxSurge"))
        errs.extend(not_more_than_100_percent(mu, f"{p}.maxUnavailable"))
        errs.extend(not_more_than_100_percent(ms, f"{p}.maxSurge"))
        has_unavailable, has_surge = intstr_value(mu) != 0, intstr_value(ms) != 0
        if has_unavailable and has_surge:
            errs.append(ferr.invalid(f"{p}.maxSurge", go_intstr(ms), "may not be set when maxUnavailable is non-zero"))
        elif not has_unavailable and not has_surge:
            errs.append(ferr.required(f"{p}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
        return errs
    go = f"apps.DaemonSetUpdateStrategy{{Type:{_go_str(t or '')}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}"
    return [ferr.not_supported(path, GoRepr(go), ["RollingUpdate", "OnDelete"])]


def validate_daemonset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateDaemonSetSpec."""
    sel = spec.get("selector")
    errs = common.validate_label_selector(sel, f"{path}.selector")
    if sel is None:
        # LabelSelectorAsSelector(nil) is labels.Nothing(): it matches no template labels
        errs.append(ferr.invalid(f"{path}.template.metadata.labels", _template_labels(spec) or {},
                                 "`selector` does not match template `labels`"))
    elif not common.selector_matches(sel, _template_labels(spec)):
        errs.append(ferr.invalid(f"{path}.template.metadata.labels", _template_labels(spec) or {},
                                 "`selector` does not match template `labels`"))
    if sel is not None and not (sel.get("matchLabels") or {}) and not (sel.get("matchExpressions") or []):
        errs.append(ferr.invalid(f"{path}.selector", go_label_selector(sel), "empty selector is invalid for daemonset"))
    errs.extend(pod.validate_pod_template(_template(spec), f"{path}.template"))
    rp = _restart_policy(spec)
    if rp != "Always":
        errs.append(ferr.not_supported(f"{path}.template.spec.restartPolicy", rp, ["Always"]))
    if (_template(spec).get("spec") or {}).get("activeDeadlineSeconds") is not None:
        errs.append(ferr.forbidden(f"{path}.template.spec.activeDeadlineSeconds",
                                   "activeDeadlineSeconds in DaemonSet is not Supported"))
    errs.extend(common.non_negative(spec.get("minReadySeconds") or 0, f"{path}.minReadySeconds"))
    errs.extend(_validate_daemonset_update_strategy(spec.get("updateStrategy") or {}, f"{path}.updateStrategy"))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(common.non_negative(spec["revisionHistoryLimit"], f"{path}.revisionHistoryLimit"))
    return errs


def validate_daemonset(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_daemonset_spec(obj.get("spec") or {}))
    return errs


def validate_daemonset_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_daemonset_spec(new.get("spec") or {})
    errs.extend(immutable_selector(new, old))
    return errs


def prepare_create_daemonset(obj: Obj) -> None:
    """Status reset; spec.templateGeneration starts at 1 (apps/v1 carries it as an annotation)."""
    obj["status"] = {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}
    meta(obj).setdefault("annotations", {})[TEMPLATE_GENERATION_ANNOTATION] = "1"


def prepare_update_daemonset(new: Obj, old: Obj) -> None:
    """Template changes bump templateGeneration, as DaemonSet's PrepareForUpdate."""
    old_ann = (old.get("metadata") or {}).get("annotations") or {}
    try:
        old_gen = int(old_ann.get(TEMPLATE_GENERATION_ANNOTATION, "0"))
    except ValueError:
        old_gen = 0
    anns = meta(new).setdefault("annotations", {})
    if not semantic_equal((new.get("spec") or {}).get("template"), (old.get("spec") or {}).get("template")):
        anns[TEMPLATE_GENERATION_ANNOTATION] = str(old_gen + 1)
    elif old_gen:
        anns[TEMPLATE_GENERATION_ANNOTATION] = str(old_gen)


def daemonset_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    tspec = _template(spec).get("spec") or {}
    names, images = container_cells(tspec)
    return [
        status.get("desiredNumberScheduled") or 0,
        status.get("currentNumberScheduled") or 0,
        status.get("numberReady") or 0,
        status.get("updatedNumberScheduled") or 0,
        status.get("numberAvailable") or 0,
        common.format_labels(tspec.get("nodeSelector")),
        age_cell(obj),
        names,
        images,
        common.format_label_selector(spec.get("selector")),
    ]


DAEMONSET_COLUMNS = (
    Column("Desired", "integer", description="The total number of nodes that should be running the daemon pod."),
    Column("Current", "integer", description="The number of nodes that are running at least 1 daemon pod and are "
           "supposed to run the daemon pod."),
    Column("Ready", "integer", description="The number of nodes that should be running the daemon pod and have one "
           "or more of the daemon pod running and ready."),
    Column("Up-to-date", "integer", description="The total number of nodes that are running updated daemon pod"),
    Column("Available", "integer", description="The number of nodes that should be running the daemon pod and have "
           "one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    Column("Node Selector", "string", description="NodeSelector is a selector which must be true for the pod to fit "
           "on a node."),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    _wide_selector("A label query over pods that are managed by the daemon set."),
)


# ---------------------------------------------------------------------------------------------
# StatefulSet


def _default_pvc_template(pvc: dict) -> None:
    """volumeClaimTemplates get PVC defaults: volumeMode Filesystem, status.phase Pending."""
    spec = pvc.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    status = pvc.get("status")
    if not isinstance(status, dict):
        status = pvc["status"] = {}
    status.setdefault("phase", "Pending")


def default_statefulset(obj: Obj) -> None:
    """SetDefaults_StatefulSet."""
    spec = spec_of(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.setdefault("updateStrategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        strategy["rollingUpdate"].setdefault("partition", 0)
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(policy, dict):
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    if not policy.get("whenDeleted"):
        policy["whenDeleted"] = "Retain"
    if not policy.get("whenScaled"):
        policy["whenScaled"] = "Retain"
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            _default_pvc_template(pvc)


def _validate_statefulset_strategy(spec: dict, path: str) -> list[FieldError]:
    strategy = spec.get("updateStrategy") or {}
    t = strategy.get("type")
    p = f"{path}.updateStrategy"
    if not t:
        return [ferr.required(p, "")]
    if t == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            return [ferr.invalid(f"{p}.rollingUpdate", GoRepr("apps.RollingUpdateStatefulSetStrategy{...}"),
                                 "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        errs: list[FieldError] = []
        if isinstance(ru, dict):
            errs.extend(common.non_negative(ru.get("partition") or 0, f"{p}.rollingUpdate.partition"))
            mu = ru.get("maxUnavailable")
            if mu is not None:
                mp = f"{p}.rollingUpdate.maxUnavailable"
                errs.extend(validate_positive_int_or_percent(mu, mp))
                if intstr_value(mu) == 0:
                    errs.append(ferr.invalid(mp, go_intstr(mu), "cannot be 0"))
                errs.extend(not_more_than_100_percent(mu, mp))
        return errs
    go = f"apps.StatefulSetUpdateStrategy{{Type:{_go_str(t)}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}"
    return [ferr.invalid(p, GoRepr(go), "must be 'RollingUpdate' or 'OnDelete'")]


def validate_statefulset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateStatefulSetSpec."""
    errs: list[FieldError] = []
    pmp = spec.get("podManagementPolicy")
    if not pmp:
        errs.append(ferr.required(f"{path}.podManagementPolicy", ""))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(ferr.invalid(f"{path}.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    errs.extend(_validate_statefulset_strategy(spec, path))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(policy, dict):
        for key in ("whenDeleted", "whenScaled"):
            v = policy.get(key) or ""
            if v not in ("Retain", "Delete"):
                errs.append(ferr.not_supported(f"{path}.persistentVolumeClaimRetentionPolicy.{key}", v, ["Retain", "Delete"]))
    errs.extend(common.non_negative(spec.get("replicas"), f"{path}.replicas"))
    errs.extend(common.non_negative(spec.get("minReadySeconds") or 0, f"{path}.minReadySeconds"))
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        errs.extend(common.non_negative(ordinals.get("start") or 0, f"{path}.ordinals.start"))
    sel = spec.get("selector")
    if sel is None:
        errs.append(ferr.required(f"{path}.selector", ""))
    else:
        errs.extend(common.validate_label_selector(sel, f"{path}.selector"))
        if not (sel.get("matchLabels") or {}) and not (sel.get("matchExpressions") or []):
            errs.append(ferr.invalid(f"{path}.selector", go_label_selector(sel), "empty selector is invalid for statefulset"))
    errs.extend(_selector_matches_template(spec, path))
    tmeta = _template(spec).get("metadata") or {}
    errs.extend(common.validate_labels(tmeta.get("labels"), f"{path}.template.labels"))
    errs.extend(common.validate_annotations(tmeta.get("annotations"), f"{path}.template.annotations"))
    rp = _restart_policy(spec)
    if rp != "Always":
        errs.append(ferr.not_supported(f"{path}.template.spec.restartPolicy", rp, ["Always"]))
    if (_template(spec).get("spec") or {}).get("activeDeadlineSeconds") is not None:
        errs.append(ferr.forbidden(f"{path}.template.spec.activeDeadlineSeconds",
                                   "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


def validate_statefulset(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "label")
    errs.extend(validate_statefulset_spec(obj.get("spec") or {}))
    return errs


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")


def validate_statefulset_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateStatefulSetUpdate: only a few spec fields may change."""
    errs = validate_statefulset_spec(new.get("spec") or {})
    ns = {k: v for k, v in (new.get("spec") or {}).items() if k not in _STS_MUTABLE}
    os_ = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STS_MUTABLE}
    if not semantic_equal(ns, os_):
        errs.append(ferr.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                   "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                   "'minReadySeconds' are forbidden"))
    return errs


def prepare_create_statefulset(obj: Obj) -> None:
    obj["status"] = {"replicas": 0, "availableReplicas": 0}


def statefulset_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = container_cells(_template(spec).get("spec"))
    return [f"{status.get('readyReplicas') or 0}/{_replicas(spec)}", age_cell(obj), names, images]


STATEFULSET_COLUMNS = (
    Column("Ready", "string", description="Number of the pod with ready state"),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
)


# ---------------------------------------------------------------------------------------------
# ControllerRevision


def validate_controllerrevision(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    if obj.get("data") is None:
        errs.append(ferr.required("data", "data is mandatory"))
    errs.extend(common.non_negative(obj.get("revision") or 0, "revision"))
    return errs


def validate_controllerrevision_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_controllerrevision(new)
    if not semantic_equal(new.get("data"), old.get("data")):
        errs.append(ferr.invalid("data", GoRepr("runtime.RawExtension{...}"), "field is immutable"))
    return errs


def controller_of(obj: Obj) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controllerrevision_row(obj: Obj) -> list:
    ref = controller_of(obj)
    controller = "<none>"
    if ref:
        api_version = ref.get("apiVersion") or ""
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        kind = ref.get("kind") or ""
        gk = f"{kind}.{group}" if group else kind
        controller = f"{gk.lower()}/{ref.get('name') or ''}" if gk else (ref.get("name") or "")
    return [controller, obj.get("revision") or 0, age_cell(obj)]


CONTROLLERREVISION_COLUMNS = (
    Column("Controller", "string", description="Controller of the object"),
    Column("Revision", "string", description="Revision indicates the revision of the state represented by Data."),
    age_column(),
)


# ---------------------------------------------------------------------------------------------


def register(reg: Registry) -> None:
    g, v = "apps", "v1"
    reg.register(Resource(
        group=g, version=v, kind="Deployment", plural="deployments", namespaced=True,
        short_names=("deploy",), categories=("all",), subresources=("status", "scale"),
        definition=definition(g, v, "Deployment"), columns=DEPLOYMENT_COLUMNS, row=deployment_row,
        default=default_deployment, validate=validate_deployment, validate_update=validate_deployment_update,
        prepare_create=prepare_create_deployment, prepare_update=prepare_update_deployment,
        tracks_generation=True, scale=ScaleSpec(selector=scale_selector),
    ))
    reg.register(Resource(
        group=g, version=v, kind="ReplicaSet", plural="replicasets", namespaced=True,
        short_names=("rs",), categories=("all",), subresources=("status", "scale"),
        definition=definition(g, v, "ReplicaSet"), columns=REPLICASET_COLUMNS, row=replicaset_row,
        default=default_replicaset, validate=validate_replicaset, validate_update=validate_replicaset_update,
        prepare_create=prepare_create_replicaset, tracks_generation=True, scale=ScaleSpec(selector=scale_selector),
    ))
    reg.register(Resource(
        group=g, version=v, kind="DaemonSet", plural="daemonsets", namespaced=True,
        short_names=("ds",), categories=("all",), subresources=("status",),
        definition=definition(g, v, "DaemonSet"), columns=DAEMONSET_COLUMNS, row=daemonset_row,
        default=default_daemonset, validate=validate_daemonset, validate_update=validate_daemonset_update,
        prepare_create=prepare_create_daemonset, prepare_update=prepare_update_daemonset, tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="StatefulSet", plural="statefulsets", namespaced=True,
        short_names=("sts",), categories=("all",), subresources=("status", "scale"),
        definition=definition(g, v, "StatefulSet"), columns=STATEFULSET_COLUMNS, row=statefulset_row,
        default=default_statefulset, validate=validate_statefulset, validate_update=validate_statefulset_update,
        prepare_create=prepare_create_statefulset, tracks_generation=True, scale=ScaleSpec(selector=scale_selector),
        name_rule="label",
    ))
    reg.register(Resource(
        group=g, version=v, kind="ControllerRevision", plural="controllerrevisions", namespaced=True,
        definition=definition(g, v, "ControllerRevision"), columns=CONTROLLERREVISION_COLUMNS,
        row=controllerrevision_row, validate=validate_controllerrevision,
        validate_update=validate_controllerrevision_update,
    ))

