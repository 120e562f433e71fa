"""InterPodAffinity: required/preferred pod affinity and anti-affinity over a topologyKey.

PreFilter counts, per (topologyKey, value), the existing pods matching the incoming pod's terms
and the existing pods whose required anti-affinity matches the incoming pod; Filter reads those
counts for the node's own topology values.
"""

from __future__ import annotations

from kubelite.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    POD_ADD,
    POD_DELETE,
    POD_UPDATE,
    SKIPPED,
    Plugin,
    unresolvable,
    unschedulable,
)

ERR_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1


class _State:
    __slots__ = ("existing_anti", "affinity", "anti_affinity", "self_match")

    def __init__(self) -> None:
        self.existing_anti: dict[tuple[str, str], int] = {}
        self.affinity: dict[tuple[str, str], int] = {}
        self.anti_affinity: dict[tuple[str, str], int] = {}
        self.self_match = False


class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    weight = 2
    events = frozenset((NODE_ADD, NODE_UPDATE, POD_ADD, POD_UPDATE, POD_DELETE))

    def pre_filter(self, state, pod):
        cache = self.handle.cache
        if not pod.required_affinity and not pod.required_anti_affinity and \
                not cache.has_pods_with_required_anti_affinity():
            return SKIPPED
        ns_labels = cache.namespace_labels
        st = _State()
        for node in cache.node_list:
            labels = node.labels
            for ep in node.pods_with_required_anti_affinity.values():
                for t in ep.required_anti_affinity:
                    v = labels.get(t.topology_key)
                    if v is not None and t.matches(pod, ns_labels):
                        k = (t.topology_key, v)
                        st.existing_anti[k] = st.existing_anti.get(k, 0) + 1
            if pod.required_affinity or pod.required_anti_affinity:
                for ep in node.pods.values():
                    if ep.uid == pod.uid:
                        continue
                    for t in pod.required_affinity:
                        v = labels.get(t.topology_key)
                        if v is not None and t.matches(ep, ns_labels):
                            k = (t.topology_key, v)
                            st.affinity[k] = st.affinity.get(k, 0) + 1
                    for t in pod.required_anti_affinity:
                        v = labels.get(t.topology_key)
                        if v is not None and t.matches(ep, ns_labels):
                            k = (t.topology_key, v)
                            st.anti_affinity[k] = st.anti_affinity.get(k, 0) + 1
        # the first pod of a group that selects itself may go anywhere its topology keys exist
        st.self_match = all(t.matches(pod, ns_labels) for t in pod.required_affinity)
        state[self.name] = st
        return None

    def filter(self, state, pod, node):
        """Upstream's order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity."""
        st: _State = state[self.name]
        labels = node.labels
        if pod.required_affinity:
            if not st.affinity and st.self_match:
                if not all(t.topology_key in labels for t in pod.required_affinity):
                    return unresolvable(ERR_AFFINITY)
            else:
                for t in pod.required_affinity:
                    v = labels.get(t.topology_key)
                    if v is None or not st.affinity.get((t.topology_key, v)):
                        return unresolvable(ERR_AFFINITY)
        for t in pod.required_anti_affinity:
            v = labels.get(t.topology_key)
            if v is not None and st.anti_affinity.get((t.topology_key, v)):
                return unschedulable(ERR_ANTI_AFFINITY)
        for (k, v), n in st.existing_anti.items():
            if n > 0 and labels.get(k) == v:
                return unschedulable(ERR_EXISTING_ANTI)
        return None

    def pre_score(self, state, pod, nodes):
        cache = self.handle.cache
        has_preferred = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not has_preferred and not cache.has_pods_with_affinity():
            return SKIPPED
        ns_labels = cache.namespace_labels
        topo: dict[tuple[str, str], int] = {}

        def add(key: str, labels: dict, w: int) -> None:
            v = labels.get(key)
            if v is not None:
                topo[(key, v)] = topo.get((key, v), 0) + w

        for node in cache.node_list:
            labels = node.labels
            existing = node.pods.values() if has_preferred else node.pods_with_affinity.values()
            for ep in existing:
                for t in pod.preferred_affinity:
                    if t.matches(ep, ns_labels):
                        add(t.topology_key, labels, t.weight)
                for t in pod.preferred_anti_affinity:
                    if t.matches(ep, ns_labels):
                        add(t.topology_key, labels, -t.weight)
                if ep.has_affinity:
                    for t in ep.required_affinity:
                        if t.matches(pod, ns_labels):
                            add(t.topology_key, labels, HARD_POD_AFFINITY_WEIGHT)
                    for t in ep.preferred_affinity:
                        if t.matches(pod, ns_labels):
                            add(t.topology_key, labels, t.weight)
                    for t in ep.preferred_anti_affinity:
                        if t.matches(pod, ns_labels):
                            add(t.topology_key, labels, -t.weight)
        if not topo:
            return SKIPPED
        state[self.name + "/score"] = topo
        return None

    def score(self, state, pod, nodes):
        topo = state[self.name + "/score"]
        raw = [sum(w for (k, v), w in topo.items() if n.labels.get(k) == v) for n in nodes]
        lo, hi = min(raw), max(raw)
        if hi == lo:
            return [0] * len(raw)
        return [(s - lo) * 100 // (hi - lo) for s in raw]
