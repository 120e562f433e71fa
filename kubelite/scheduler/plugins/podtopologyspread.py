"""PodTopologySpread: maxSkew over topologyKey domains; DoNotSchedule filters, ScheduleAnyway scores."""

from __future__ import annotations

import math

from kubelite.api.selectors import IN, LabelSelector, Requirement
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
from kubelite.scheduler.nodeinfo import _safe_selector
from kubelite.scheduler.plugins.nodeaffinity import required_node_affinity
from kubelite.scheduler.plugins.tainttoleration import first_untolerated

ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"


class Constraint:
    __slots__ = ("max_skew", "key", "hard", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, c: dict, pod_labels: dict):
        self.max_skew = int(c.get("maxSkew") or 1)
        self.key = c.get("topologyKey") or ""
        self.hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        sel = _safe_selector(c.get("labelSelector"))
        extra = [Requirement(k, IN, (pod_labels[k],)) for k in c.get("matchLabelKeys") or [] if k in pod_labels]
        if extra and not sel.is_nothing():
            sel = LabelSelector(list(sel.requirements) + extra)
        self.selector = sel
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"


def _constraints(pod) -> list[Constraint]:
    return [Constraint(c, pod.labels) for c in (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or []
            if isinstance(c, dict)]


def _count(cache, pod, constraints: list[Constraint]) -> tuple[dict[tuple[int, str], int], list[set[str]]]:
    """Matching pods per (constraint index, domain) over eligible nodes, and each constraint's domains."""
    counts: dict[tuple[int, str], int] = {}
    domains: list[set[str]] = [set() for _ in constraints]
    required = required_node_affinity(pod.pod.get("spec") or {})
    for node in cache.node_list:
        labels = node.labels
        if not all(c.key in labels for c in constraints):
            continue
        for i, c in enumerate(constraints):
            if c.honor_affinity and not required.matches(labels, node.name):
                continue
            if c.honor_taints and first_untolerated(node.taints, pod.tolerations) is not None:
                continue
            v = labels[c.key]
            domains[i].add(v)
            n = 0
            for ep in node.pods.values():
                if ep.namespace == pod.namespace and not ep.terminating and ep.uid != pod.uid \
                        and c.selector.matches(ep.labels):
                    n += 1
            counts[(i, v)] = counts.get((i, v), 0) + n
    return counts, domains


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    weight = 2
    events = frozenset((NODE_ADD, NODE_UPDATE, POD_ADD, POD_UPDATE, POD_DELETE))

    def pre_filter(self, state, pod):
        hard = [c for c in _constraints(pod) if c.hard]
        if not hard:
            return SKIPPED
        counts, domains = _count(self.handle.cache, pod, hard)
        mins = []
        for i, c in enumerate(hard):
            if len(domains[i]) < c.min_domains:
                mins.append(0)
            else:
                mins.append(min((counts.get((i, v), 0) for v in domains[i]), default=0))
        state[self.name] = (hard, counts, mins)
        return None

    def filter(self, state, pod, node):
        hard, counts, mins = state[self.name]
        labels = node.labels
        for i, c in enumerate(hard):
            v = labels.get(c.key)
            if v is None:
                return unresolvable(ERR_MISSING_LABEL)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            if counts.get((i, v), 0) + self_match - mins[i] > c.max_skew:
                return unschedulable(ERR_CONSTRAINTS)
        return None

    def pre_score(self, state, pod, nodes):
        soft = [c for c in _constraints(pod) if not c.hard]
        if not soft:
            return SKIPPED
        counts, domains = _count(self.handle.cache, pod, soft)
        weights = [math.log(len(d) + 2) for d in domains]
        state[self.name + "/score"] = (soft, counts, weights)
        return None

    def score(self, state, pod, nodes):
        soft, counts, weights = state[self.name + "/score"]
        raw: list[float | None] = []
        for n in nodes:
            if not all(c.key in n.labels for c in soft):
                raw.append(None)
                continue
            raw.append(sum(counts.get((i, n.labels[c.key]), 0) * weights[i] for i, c in enumerate(soft)))
        valid = [s for s in raw if s is not None]
        if not valid:
            return [0] * len(nodes)
        lo, hi = min(valid), max(valid)
        out = []
        for s in raw:
            if s is None:
                out.append(0)
            elif hi == 0:
                out.append(100)
            else:
                out.append(int(100 * (hi + lo - s) / hi))
        return out
