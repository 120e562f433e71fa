"""PodInfo and NodeInfo: what the scheduler precomputes about pods and nodes, as upstream's framework types.

A PodInfo parses a pod once (requests, host ports, affinity terms, tolerations); a NodeInfo keeps a
node's allocatable and the running sum of its pods' requests as ints, so that Filter and Score are
integer arithmetic on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubelite.api.selectors import (
    DOES_NOT_EXIST,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorError,
    selector_from_label_selector,
)
from kubelite.scheduler import resources as rs

Obj = dict[str, Any]

_NODE_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
             "Gt": GREATER_THAN, "Lt": LESS_THAN}


def _safe_selector(sel: dict | None) -> LabelSelector:
    try:
        return selector_from_label_selector(sel)
    except (SelectorError, AttributeError, TypeError):
        return LabelSelector.nothing()


@dataclass(slots=True)
class AffinityTerm:
    """A PodAffinityTerm resolved against its pod: who it selects, in which namespaces, over which topology."""

    selector: LabelSelector
    namespaces: frozenset[str]
    ns_selector: LabelSelector | None
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo, ns_labels: dict[str, dict]) -> bool:
        if pod.namespace not in self.namespaces:
            if self.ns_selector is None or not self.ns_selector.matches(ns_labels.get(pod.namespace)):
                return False
        return self.selector.matches(pod.labels)


def _affinity_term(pod: Obj, term: dict, weight: int = 0) -> AffinityTerm:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    sel = _safe_selector(term.get("labelSelector"))
    extra: list[Requirement] = []
    # matchLabelKeys / mismatchLabelKeys (MatchLabelKeysInPodAffinity, beta and on in 1.31+)
    for key in term.get("matchLabelKeys") or []:
        if key in labels:
            extra.append(Requirement(key, IN, (labels[key],)))
    for key in term.get("mismatchLabelKeys") or []:
        if key in labels:
            extra.append(Requirement(key, NOT_IN, (labels[key],)))
    if extra and not sel.is_nothing():
        sel = LabelSelector(list(sel.requirements) + extra)
    namespaces = frozenset(term.get("namespaces") or ())
    ns_sel_raw = term.get("namespaceSelector")
    ns_sel = _safe_selector(ns_sel_raw) if ns_sel_raw is not None else None
    if not namespaces and ns_sel is None:
        namespaces = frozenset((meta.get("namespace") or "default",))
    return AffinityTerm(sel, namespaces, ns_sel, term.get("topologyKey") or "", weight)


@dataclass(slots=True)
class NodeSelectorTerm:
    """One nodeSelectorTerm: label requirements and metadata.name field requirements, ANDed."""

    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]
    valid: bool = True

    def matches(self, node_labels: dict, node_name: str) -> bool:
        if not self.valid:
            return False
        for r in self.labels:
            if not r.matches(node_labels):
                return False
        for r in self.fields:
            if not r.matches({"metadata.name": node_name}):
                return False
        return True


def node_selector_term(term: dict) -> NodeSelectorTerm:
    """nodeaffinity.newNodeSelectorTerm; a term with no requirements matches nothing, as upstream."""
    labels: list[Requirement] = []
    fields: list[Requirement] = []
    valid = True
    for expr in term.get("matchExpressions") or []:
        op = _NODE_OPS.get(expr.get("operator"))
        if op is None:
            valid = False
            continue
        labels.append(Requirement(expr.get("key") or "", op, tuple(expr.get("values") or ())))
    for expr in term.get("matchFields") or []:
        op = _NODE_OPS.get(expr.get("operator"))
        if expr.get("key") != "metadata.name" or op not in (IN, NOT_IN):
            valid = False
            continue
        fields.append(Requirement("metadata.name", op, tuple(expr.get("values") or ())))
    if not labels and not fields:
        valid = False
    return NodeSelectorTerm(tuple(labels), tuple(fields), valid)


class PodInfo:
    """A pod parsed once for scheduling."""

    __slots__ = ("pod", "uid", "key", "namespace", "name", "labels", "priority", "requests", "cpu", "memory",
                 "scalar", "nz_cpu", "nz_memory", "host_ports", "required_affinity", "required_anti_affinity",
                 "preferred_affinity", "preferred_anti_affinity", "tolerations", "owner_uid", "node_name",
                 "timestamp", "attempts", "initial_attempt", "unschedulable_plugins", "terminating")

    def __init__(self, pod: Obj):
        self.update(pod)
        self.timestamp = 0.0
        self.attempts = 0
        self.initial_attempt = 0.0
        self.unschedulable_plugins: set[str] = set()

    def update(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.uid = meta.get("uid") or ""
        self.namespace = meta.get("namespace") or "default"
        self.name = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.labels = meta.get("labels") or {}
        self.priority = int(spec.get("priority") or 0)
        self.node_name = spec.get("nodeName") or ""
        self.terminating = bool(meta.get("deletionTimestamp"))
        req = rs.pod_requests(spec)
        self.requests = req
        self.cpu = req.get(rs.CPU, 0)
        self.memory = req.get(rs.MEMORY, 0)
        self.scalar = {k: v for k, v in req.items() if k not in (rs.CPU, rs.MEMORY) and v}
        self.nz_cpu, self.nz_memory = rs.non_zero_requests(spec)
        ports = []
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for p in (c or {}).get("ports") or []:
                hp = (p or {}).get("hostPort")
                if hp:
                    ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
        self.host_ports = ports
        aff = spec.get("affinity") or {}
        pa, paa = aff.get("podAffinity") or {}, aff.get("podAntiAffinity") or {}
        self.required_affinity = [_affinity_term(pod, t) for t in
                                  pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        self.required_anti_affinity = [_affinity_term(pod, t) for t in
                                       paa.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        self.preferred_affinity = [_affinity_term(pod, t.get("podAffinityTerm") or {}, int(t.get("weight") or 0))
                                   for t in pa.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        self.preferred_anti_affinity = [
            _affinity_term(pod, t.get("podAffinityTerm") or {}, int(t.get("weight") or 0))
            for t in paa.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        self.tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        owner = ""
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                owner = ref.get("uid") or ""
                break
        self.owner_uid = owner

    @property
    def has_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)


class NodeInfo:
    """A node with the sum of what its pods (bound and assumed) request."""

    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "alloc_cpu", "alloc_memory", "alloc_pods",
                 "alloc_scalar", "req_cpu", "req_memory", "req_scalar", "nz_cpu", "nz_memory", "pods",
                 "used_ports", "pods_with_affinity", "pods_with_required_anti_affinity", "owner_counts",
                 "generation", "prefer_no_schedule")

    def __init__(self, name: str):
        self.name = name
        self.node: Obj | None = None
        self.labels: dict = {}
        self.taints: list[dict] = []
        self.prefer_no_schedule: list[dict] = []
        self.unschedulable = False
        self.alloc_cpu = self.alloc_memory = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.req_cpu = self.req_memory = self.nz_cpu = self.nz_memory = 0
        self.req_scalar: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.owner_counts: dict[str, int] = {}
        self.generation = 0

    def set_node(self, node: Obj) -> None:
        self.node = node
        meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        self.labels = meta.get("labels") or {}
        taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        self.taints = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.prefer_no_schedule = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = rs.resource_list(status.get("allocatable") or status.get("capacity"))
        self.alloc_cpu = alloc.get(rs.CPU, 0)
        self.alloc_memory = alloc.get(rs.MEMORY, 0)
        self.alloc_pods = alloc.get(rs.PODS, 0)
        self.alloc_scalar = {k: v for k, v in alloc.items() if k not in (rs.CPU, rs.MEMORY, rs.PODS)}
        self.generation += 1

    def add_pod(self, pi: PodInfo) -> None:
        self.pods[pi.uid] = pi
        self.req_cpu += pi.cpu
        self.req_memory += pi.memory
        self.nz_cpu += pi.nz_cpu
        self.nz_memory += pi.nz_memory
        for k, v in pi.scalar.items():
            self.req_scalar[k] = self.req_scalar.get(k, 0) + v
        for p in pi.host_ports:
            self.used_ports[p] = self.used_ports.get(p, 0) + 1
        if pi.has_affinity:
            self.pods_with_affinity[pi.uid] = pi
            if pi.required_anti_affinity:
                self.pods_with_required_anti_affinity[pi.uid] = pi
        if pi.owner_uid:
            self.owner_counts[pi.owner_uid] = self.owner_counts.get(pi.owner_uid, 0) + 1
        self.generation += 1

    def remove_pod(self, uid: str) -> PodInfo | None:
        pi = self.pods.pop(uid, None)
        if pi is None:
            return None
        self.req_cpu -= pi.cpu
        self.req_memory -= pi.memory
        self.nz_cpu -= pi.nz_cpu
        self.nz_memory -= pi.nz_memory
        for k, v in pi.scalar.items():
            self.req_scalar[k] = self.req_scalar.get(k, 0) - v
        for p in pi.host_ports:
            n = self.used_ports.get(p, 0) - 1
            if n > 0:
                self.used_ports[p] = n
            else:
                self.used_ports.pop(p, None)
        self.pods_with_affinity.pop(uid, None)
        self.pods_with_required_anti_affinity.pop(uid, None)
        if pi.owner_uid:
            n = self.owner_counts.get(pi.owner_uid, 0) - 1
            if n > 0:
                self.owner_counts[pi.owner_uid] = n
            else:
                self.owner_counts.pop(pi.owner_uid, None)
        self.generation += 1
        return pi

    def clone(self) -> NodeInfo:
        """A copy whose pod set can change without touching the cache (preemption's what-ifs)."""
        c = NodeInfo(self.name)
        c.node, c.labels, c.taints, c.prefer_no_schedule = self.node, self.labels, self.taints, self.prefer_no_schedule
        c.unschedulable = self.unschedulable
        c.alloc_cpu, c.alloc_memory, c.alloc_pods = self.alloc_cpu, self.alloc_memory, self.alloc_pods
        c.alloc_scalar = self.alloc_scalar
        for pi in self.pods.values():
            c.add_pod(pi)
        return c
