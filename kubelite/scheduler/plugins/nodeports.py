"""NodePorts: a hostPort is taken on a node when protocol and port match and the host IPs overlap
(equal, or either is 0.0.0.0)."""

from __future__ import annotations

from kubelite.scheduler.framework import NODE_ADD, POD_DELETE, SKIPPED, Plugin, unschedulable

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
WILDCARD = "0.0.0.0"


def ports_conflict(wanted: list[tuple[str, str, int]], used: dict[tuple[str, str, int], int]) -> bool:
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if uport == port and uproto == proto and (ip == uip or ip == WILDCARD or uip == WILDCARD):
                return True
    return False


class NodePorts(Plugin):
    name = "NodePorts"
    events = frozenset((NODE_ADD, POD_DELETE))

    def pre_filter(self, state, pod):
        return None if pod.host_ports else SKIPPED

    def filter(self, state, pod, node):
        if node.used_ports and ports_conflict(pod.host_ports, node.used_ports):
            return unschedulable(ERR_REASON)
        return None
