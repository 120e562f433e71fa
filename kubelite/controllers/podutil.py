"""Pod predicates the workload controllers share (upstream's pkg/api/v1/pod and controller_utils)."""

from __future__ import annotations

import math
import time
from typing import Any

from kubelite.api.meta import parse_time

Obj = dict[str, Any]


def pod_ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = pod_ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float | None = None) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    c = pod_ready_condition(pod)
    if c is None or c.get("status") != "True":
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(c.get("lastTransitionTime"))
    if since is None:
        return False
    return since + min_ready_seconds <= (time.time() if now is None else now)


def is_pod_active(pod: Obj) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def filter_active_pods(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if is_pod_active(p)]


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _log2_bucket(seconds: float) -> int:
    """LogarithmicScaleDown: compare durations by the power of two they fall in."""
    if seconds <= 0:
        return -1
    return int(math.floor(math.log2(seconds)))


def _restarts(pod: Obj) -> int:
    return max((c.get("restartCount") or 0 for c in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def deletion_rank_key(pod: Obj, rank: int = 0, now: float | None = None) -> tuple:
    """Sort key putting the pods to delete first, as upstream's ActivePodsWithRanks.Less does:
    unassigned before assigned, Pending < Unknown < Running, not ready before ready, more related
    pods on the same node first, ready for less time first, more restarts first, newer first."""
    now = time.time() if now is None else now
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = is_pod_ready(pod)
    ready_bucket = 0
    if ready:
        since = parse_time((pod_ready_condition(pod) or {}).get("lastTransitionTime"))
        ready_bucket = _log2_bucket(now - since) if since is not None else 0
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(status.get("phase") or "Pending", 3),
        1 if ready else 0,
        -rank,
        ready_bucket,
        -_restarts(pod),
        -_log2_bucket(now - created) if created else 0,
        -created,
    )


def pods_on_same_node_ranks(pods: list[Obj], related: list[Obj]) -> list[int]:
    """For each pod, how many active related pods share its node (getPodsRankedByRelatedPodsOnSameNode)."""
    per_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            per_node[node] = per_node.get(node, 0) + 1
    return [per_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods]


class PodFacts:
    """What the workload controllers read of one pod object, worked out once per object version."""

    __slots__ = ("obj", "namespace", "active", "ready", "ready_since", "labels", "label_set", "controller_uid")

    def __init__(self, pod: Obj):
        self.obj = pod
        meta = pod.get("metadata") or {}
        self.namespace = meta.get("namespace")
        self.active = is_pod_active(pod)
        cond = pod_ready_condition(pod)
        self.ready = cond is not None and cond.get("status") == "True"
        self.ready_since = parse_time(cond.get("lastTransitionTime")) if self.ready and cond else None
        self.labels: dict = meta.get("labels") or {}
        try:
            self.label_set: frozenset | None = frozenset(self.labels.items())
        except TypeError:  # not a str -> str map; callers fall back to comparing the dict
            self.label_set = None
        self.controller_uid = next((r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")),
                                   None)

    def available(self, min_ready_seconds: int, now: float) -> bool:
        """is_pod_available from the cached Ready condition."""
        if not self.ready:
            return False
        if not min_ready_seconds:
            return True
        return self.ready_since is not None and self.ready_since + min_ready_seconds <= now

    def has_labels(self, want: frozenset | None, want_dict: dict) -> bool:
        """Every label of `want_dict` present with its value (`want` is its item set, when hashable)."""
        if want is not None and self.label_set is not None:
            return want <= self.label_set
        labels = self.labels
        return all(labels.get(k) == v for k, v in want_dict.items())


class PodFactsCache:
    """PodFacts by informer key, recomputed only when the informer holds a new object for the key.

    A ReplicaSet sync runs on every event of any of its pods and looks at all of them; with this
    cache a sync costs a dict lookup per unchanged pod instead of walking each one's status."""

    def __init__(self) -> None:
        self._by_key: dict[str, PodFacts] = {}

    def get(self, key: str, pod: Obj) -> PodFacts:
        f = self._by_key.get(key)
        if f is None or f.obj is not pod:
            f = PodFacts(pod)
            self._by_key[key] = f
        return f

    def get_all(self, items: list[tuple[str, Obj]]) -> list[PodFacts]:
        """`get` for many (key, pod) pairs: the loop every sync runs, kept tight."""
        by_key = self._by_key
        out = []
        for key, pod in items:
            f = by_key.get(key)
            if f is None or f.obj is not pod:
                f = by_key[key] = PodFacts(pod)
            out.append(f)
        return out

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def __len__(self) -> int:
        return len(self._by_key)
