"""NodeAffinity: spec.nodeSelector and required/preferred nodeAffinity terms (incl. matchFields metadata.name)."""

from __future__ import annotations

from kubelite.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    SKIPPED,
    Plugin,
    default_normalize,
    unresolvable,
)
from kubelite.scheduler.nodeinfo import NodeSelectorTerm, node_selector_term

ERR_REASON = "node(s) didn't match Pod's node affinity/selector"


class _Required:
    __slots__ = ("node_selector", "terms")

    def __init__(self, node_selector: dict, terms: list[NodeSelectorTerm] | None):
        self.node_selector = node_selector
        self.terms = terms

    def matches(self, labels: dict, name: str) -> bool:
        for k, v in self.node_selector.items():
            if labels.get(k) != v:
                return False
        if self.terms is not None and not any(t.matches(labels, name) for t in self.terms):
            return False
        return True


def required_node_affinity(pod_spec: dict) -> _Required:
    """nodeaffinity.GetRequiredNodeAffinity: nodeSelector AND any of the required terms."""
    aff = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None
    if req is not None:
        terms = [node_selector_term(t or {}) for t in req.get("nodeSelectorTerms") or []]
    return _Required(pod_spec.get("nodeSelector") or {}, terms)


def _node_names_from_terms(spec: dict) -> set[str] | None:
    """PreFilterResult: when every term pins metadata.name In [...], only those nodes can fit."""
    aff = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    names: set[str] | None = None
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        return None
    for t in terms:
        fields = [f for f in (t or {}).get("matchFields") or []
                  if f.get("key") == "metadata.name" and f.get("operator") == "In"]
        if not fields:
            return None  # one term without a name restriction: any node may fit
        term_names = set(fields[0].get("values") or [])
        for f in fields[1:]:
            term_names &= set(f.get("values") or [])
        names = term_names if names is None else names | term_names
    return names


class NodeAffinity(Plugin):
    name = "NodeAffinity"
    weight = 2
    events = frozenset((NODE_ADD, NODE_UPDATE))

    def pre_filter(self, state, pod):
        spec = pod.pod.get("spec") or {}
        required = required_node_affinity(spec)
        if not required.node_selector and required.terms is None:
            return SKIPPED
        state[self.name] = required
        names = _node_names_from_terms(spec)
        if names is not None:
            state.node_names = names if state.node_names is None else state.node_names & names
        return None

    def filter(self, state, pod, node):
        required = state.get(self.name)
        if required is None:
            required = state[self.name] = required_node_affinity(pod.pod.get("spec") or {})
        if required.matches(node.labels, node.name):
            return None
        return unresolvable(ERR_REASON)

    def pre_score(self, state, pod, nodes):
        aff = (((pod.pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
        preferred = aff.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        terms = [(int(p.get("weight") or 0), node_selector_term(p.get("preference") or {})) for p in preferred]
        terms = [(w, t) for w, t in terms if w]
        if not terms:
            return SKIPPED
        state[self.name + "/preferred"] = terms
        return None

    def score(self, state, pod, nodes):
        terms = state[self.name + "/preferred"]
        raw = [sum(w for w, t in terms if t.matches(n.labels, n.name)) for n in nodes]
        return default_normalize(raw)
