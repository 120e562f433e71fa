"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods tolerating the unschedulable taint."""

from __future__ import annotations

from kubelite.scheduler.framework import NODE_ADD, NODE_UPDATE, Plugin, unresolvable
from kubelite.scheduler.plugins.tainttoleration import tolerates

ERR_REASON = "node(s) were unschedulable"
_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    events = frozenset((NODE_ADD, NODE_UPDATE))

    def filter(self, state, pod, node):
        if not node.unschedulable:
            return None
        if any(tolerates(t, _TAINT) for t in pod.tolerations):
            return None
        return unresolvable(ERR_REASON)
