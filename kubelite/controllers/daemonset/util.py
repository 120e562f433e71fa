"""DaemonSet pod shaping (upstream pkg/controller/daemon/util): the automatic tolerations, the node
affinity that pins a daemon pod to its node, and the labels that tie a pod to a revision."""

from __future__ import annotations

from typing import Any

from kubelite.api import meta as metautil
from kubelite.controllers.controller_revisions import CONTROLLER_REVISION_HASH_LABEL

Obj = dict[str, Any]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def _add_or_update_toleration(tolerations: list[Obj], tol: Obj) -> None:
    for i, t in enumerate(tolerations):
        if t.get("key") == tol["key"] and t.get("effect") == tol["effect"] and \
                (t.get("operator") or "Equal") == tol["operator"]:
            tolerations[i] = tol
            return
    tolerations.append(tol)


def add_daemon_pod_tolerations(spec: Obj) -> None:
    """AddOrUpdateDaemonPodTolerations: daemons survive not-ready/unreachable nodes (NoExecute, no
    deadline) and schedule onto nodes under pressure or cordoned (NoSchedule)."""
    tols = spec.setdefault("tolerations", [])
    for key, effect in ((TAINT_NOT_READY, "NoExecute"), (TAINT_UNREACHABLE, "NoExecute"),
                        (TAINT_DISK_PRESSURE, "NoSchedule"), (TAINT_MEMORY_PRESSURE, "NoSchedule"),
                        (TAINT_PID_PRESSURE, "NoSchedule"), (TAINT_UNSCHEDULABLE, "NoSchedule")):
        _add_or_update_toleration(tols, {"key": key, "operator": "Exists", "effect": effect})
    if spec.get("hostNetwork"):
        _add_or_update_toleration(tols, {"key": TAINT_NETWORK_UNAVAILABLE, "operator": "Exists",
                                         "effect": "NoSchedule"})


def replace_node_name_affinity(affinity: Obj | None, node_name: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: required affinity becomes exactly one term with
    `matchFields metadata.name In [node]`, keeping the term's label expressions."""
    affinity = metautil.deep_copy(affinity) if affinity else {}
    node_aff = affinity.setdefault("nodeAffinity", {})
    field_req = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required or not required.get("nodeSelectorTerms"):
        node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchFields": [field_req]}]}
        return affinity
    terms = []
    for term in required["nodeSelectorTerms"]:
        t = dict(term)
        t["matchFields"] = [field_req]
        terms.append(t)
    required["nodeSelectorTerms"] = terms
    return affinity


def target_node_name(pod: Obj) -> str | None:
    """GetTargetNodeName: spec.nodeName, or the node the matchFields affinity pins an unscheduled pod to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def new_daemon_pod_template(ds: Obj, hash_: str) -> Obj:
    """CreatePodTemplate: the template plus tolerations, generation and revision hash labels."""
    template = metautil.deep_copy(((ds.get("spec") or {}).get("template")) or {})
    meta = template.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels[TEMPLATE_GENERATION_LABEL] = str(ds["metadata"].get("generation") or 1)
    if hash_:
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    add_daemon_pod_tolerations(template.setdefault("spec", {}))
    return template


def is_pod_updated(pod: Obj, hash_: str, generation: int | None) -> bool:
    """IsPodUpdated: the pod carries the current revision hash (or the current template generation)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(CONTROLLER_REVISION_HASH_LABEL) == hash_
