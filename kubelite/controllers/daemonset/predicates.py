"""Node predicates a DaemonSet (and the NoExecute taint manager) evaluates without the scheduler:
taints against tolerations (k8s.io/api core/v1 toleration.go, component-helpers/scheduling/corev1)
and required node affinity (nodeSelector plus nodeSelectorTerms)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def toleration_tolerates_taint(tol: Obj, taint: Obj) -> bool:
    """Toleration.ToleratesTaint: effect and key match (empty means any), then Equal or Exists."""
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if tol.get("key") and tol.get("key") != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: list[Obj] | None, taint: Obj) -> bool:
    return any(toleration_tolerates_taint(t, taint) for t in tolerations or [])


def untolerated_taint(taints: list[Obj] | None, tolerations: list[Obj] | None, effects: tuple[str, ...]) -> Obj | None:
    """FindMatchingUntoleratedTaint restricted to `effects`."""
    for taint in taints or []:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def _requirement_matches(req: Obj, values_of: dict[str, str]) -> bool:
    key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    present = key in values_of
    v = values_of.get(key)
    if op == "In":
        return present and v in values
    if op == "NotIn":
        return not present or v not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            a, b = int(v or ""), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: all expressions on labels and all fields (metadata.name) match; empty matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not all(_requirement_matches(r, labels) for r in exprs):
        return False
    field_values = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    return all(_requirement_matches(r, field_values) for r in fields)


def node_selector_matches(selector: Obj | None, node: Obj) -> bool:
    """A NodeSelector: the terms are ORed."""
    if selector is None:
        return True
    return any(node_selector_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def pod_matches_node_affinity(pod_spec: Obj, node: Obj) -> bool:
    """nodeSelector labels and requiredDuringSchedulingIgnoredDuringExecution (GetRequiredNodeAffinity)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    return node_selector_matches(required, node)
