"""NodeResourcesFit (filter + LeastAllocated score) and NodeResourcesBalancedAllocation.

Requests are the pod's effective requests (containers summed, init containers by the max rule,
overhead added); the pod count is checked against allocatable pods. Scores use the non-zero
requests (100m / 200Mi for containers that declare none), as upstream.
"""

from __future__ import annotations

from kubelite.scheduler.framework import NODE_ADD, NODE_UPDATE, POD_DELETE, Plugin, unschedulable
from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo

TOO_MANY_PODS = "Too many pods"


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """fitsRequest: the reasons, in upstream's order (pods, cpu, memory, then scalar resources)."""
    reasons = []
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    if pod.cpu and pod.cpu > node.alloc_cpu - node.req_cpu:
        reasons.append("Insufficient cpu")
    if pod.memory and pod.memory > node.alloc_memory - node.req_memory:
        reasons.append("Insufficient memory")
    for k, v in pod.scalar.items():
        if v > node.alloc_scalar.get(k, 0) - node.req_scalar.get(k, 0):
            reasons.append(f"Insufficient {k}")
    return reasons


class NodeResourcesFit(Plugin):
    """Filter on requests vs allocatable; score by the LeastAllocated strategy (upstream's default)."""

    name = "NodeResourcesFit"
    events = frozenset((NODE_ADD, NODE_UPDATE, POD_DELETE))

    def filter(self, state, pod, node):
        # fast path for the common case: room for one more pod, cpu and memory, no extended resources
        if (len(node.pods) < node.alloc_pods and pod.cpu <= node.alloc_cpu - node.req_cpu
                and pod.memory <= node.alloc_memory - node.req_memory and not pod.scalar):
            return None
        reasons = insufficient_resources(pod, node)
        return unschedulable(*reasons) if reasons else None

    def score(self, state, pod, nodes):
        pc, pm = pod.nz_cpu, pod.nz_memory
        out = []
        for n in nodes:
            ac, am = n.alloc_cpu, n.alloc_memory
            c = (ac - n.nz_cpu - pc) * 100 // ac if ac and n.nz_cpu + pc <= ac else 0
            m = (am - n.nz_memory - pm) * 100 // am if am and n.nz_memory + pm <= am else 0
            out.append((c + m) // 2)
        return out


class NodeResourcesBalancedAllocation(Plugin):
    """Prefer nodes whose cpu and memory fractions stay close: score = (1 - std) * 100."""

    name = "NodeResourcesBalancedAllocation"
    events = frozenset((NODE_ADD, NODE_UPDATE, POD_DELETE))

    def score(self, state, pod, nodes):
        pc, pm = pod.nz_cpu, pod.nz_memory
        out = []
        for n in nodes:
            ac, am = n.alloc_cpu, n.alloc_memory
            fc = min((n.nz_cpu + pc) / ac, 1.0) if ac else 1.0
            fm = min((n.nz_memory + pm) / am, 1.0) if am else 1.0
            out.append(int((1.0 - abs(fc - fm) / 2) * 100))
        return out
