"""The scheduler's cache (upstream internal/cache): nodes plus bound and assumed pods.

A pod is *assumed* on its node as soon as the scheduling cycle picks it, before the binding is
written, so the next cycles see its requests and a burst never overcommits a node. The informer's
add of the bound pod confirms the assumption; a failed binding forgets it. The whole scheduling
cycle runs without awaiting, so the cache itself is the cycle's consistent snapshot.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Cache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self.node_list: list[NodeInfo] = []  # nodes that exist, in a stable order
        self._pods: dict[str, tuple[str, PodInfo]] = {}  # uid -> (node name, info)
        self._assumed: set[str] = set()
        self.namespace_labels: dict[str, dict] = {}
        # node name -> {uid: PodInfo} of pods nominated there by preemption (upstream's nominator)
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}
        self.num_with_affinity = 0  # pods counted anywhere that carry (anti-)affinity terms
        self.num_with_required_anti_affinity = 0

    # -- nodes ---------------------------------------------------------------------------------

    def node(self, name: str) -> NodeInfo | None:
        ni = self._nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    def _node_info(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo(name)
        return ni

    def add_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self._node_info(name)
        if ni.node is None:
            self.node_list.append(ni)
        ni.set_node(node)
        return ni

    update_node = add_node

    def remove_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ni = self._nodes.get(name)
        if ni is None:
            return
        if ni.node is not None:
            self.node_list = [n for n in self.node_list if n is not ni]
        ni.node = None
        if not ni.pods:  # keep a ghost for pods still bound there until they go (as upstream)
            del self._nodes[name]

    @property
    def num_nodes(self) -> int:
        return len(self.node_list)

    def has_prefer_no_schedule_taints(self) -> bool:
        return any(n.prefer_no_schedule for n in self.node_list)

    def has_pods_with_affinity(self) -> bool:
        return self.num_with_affinity > 0

    def has_pods_with_required_anti_affinity(self) -> bool:
        return self.num_with_required_anti_affinity > 0

    # -- pods ----------------------------------------------------------------------------------

    def is_assumed(self, uid: str) -> bool:
        return uid in self._assumed

    def pod_count(self) -> int:
        return len(self._pods)

    def _place(self, node_name: str, pi: PodInfo) -> None:
        self._node_info(node_name).add_pod(pi)
        self._pods[pi.uid] = (node_name, pi)
        if pi.has_affinity:
            self.num_with_affinity += 1
            if pi.required_anti_affinity:
                self.num_with_required_anti_affinity += 1

    def _unplace(self, uid: str) -> PodInfo | None:
        entry = self._pods.pop(uid, None)
        if entry is None:
            return None
        node_name, old = entry
        if old.has_affinity:
            self.num_with_affinity -= 1
            if old.required_anti_affinity:
                self.num_with_required_anti_affinity -= 1
        ni = self._nodes.get(node_name)
        pi = ni.remove_pod(uid) if ni is not None else None
        if ni is not None and ni.node is None and not ni.pods:
            del self._nodes[node_name]
        return pi

    def assume_pod(self, pi: PodInfo, node_name: str) -> None:
        """Count the pod on node_name before its binding is written."""
        self._unplace(pi.uid)
        self._place(node_name, pi)
        self._assumed.add(pi.uid)

    def forget_pod(self, pi: PodInfo) -> None:
        if pi.uid in self._assumed:
            self._assumed.discard(pi.uid)
            self._unplace(pi.uid)

    def add_pod(self, pod: Obj) -> None:
        """A bound pod seen by the informer: confirm an assumption or count it."""
        pi = PodInfo(pod)
        self._assumed.discard(pi.uid)
        self._unplace(pi.uid)
        self._place(pi.node_name, pi)

    update_pod = add_pod

    def remove_pod(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        self._assumed.discard(uid)
        self._unplace(uid)

    def pods_on(self, node_name: str) -> list[PodInfo]:
        ni = self._nodes.get(node_name)
        return list(ni.pods.values()) if ni is not None else []

    def all_pods(self) -> list[PodInfo]:
        return [pi for _, pi in self._pods.values()]

    # -- nominated pods (preemption) -----------------------------------------------------------

    def set_nominated(self, pi: PodInfo, node_name: str) -> None:
        self.clear_nominated(pi.uid)
        if node_name:
            self.nominated.setdefault(node_name, {})[pi.uid] = pi
            self._nominated_node[pi.uid] = node_name

    def clear_nominated(self, uid: str) -> None:
        node = self._nominated_node.pop(uid, None)
        if node is not None:
            pods = self.nominated.get(node)
            if pods is not None:
                pods.pop(uid, None)
                if not pods:
                    del self.nominated[node]

    def nominated_node(self, uid: str) -> str:
        return self._nominated_node.get(uid, "")
