"""NodeName: a pod naming spec.nodeName fits only that node."""

from __future__ import annotations

from kubelite.scheduler.framework import NODE_ADD, SKIPPED, Plugin, unresolvable

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName(Plugin):
    name = "NodeName"
    events = frozenset((NODE_ADD,))

    def pre_filter(self, state, pod):
        return None if pod.node_name else SKIPPED

    def filter(self, state, pod, node):
        if pod.node_name and pod.node_name != node.name:
            return unresolvable(ERR_REASON)
        return None
