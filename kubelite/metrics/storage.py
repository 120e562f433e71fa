"""metrics-server's storage: the last two samples per node and container, and the rates between them.

CPU usage is a rate, so it needs two cumulative samples: `(cpu_last - cpu_prev) / (t_last - t_prev)`
in nanocores, over that window; memory is the last working set. A container that started after the
previous scrape and has run at least FRESH_CONTAINER_MIN_RESOLUTION uses its start time (with zero
CPU) as its previous sample, so it gets metrics one scrape sooner; a counter that went backwards
(a restart) yields nothing until the next scrape. A pod is served only when every container has two
samples, so `kubectl top pod --containers` never shows half a pod.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubelite.metrics.resource_text import ContainerStats, NodeStats

FRESH_CONTAINER_MIN_RESOLUTION = 10.0  # seconds: metrics-server's freshContainerMinMetricsResolution


@dataclass(frozen=True)
class Usage:
    """One usage over one window: CPU in nanocores, memory in bytes, timestamp and window in seconds."""

    cpu: int
    memory: int
    timestamp: float
    window: float


@dataclass(frozen=True)
class _Point:
    cpu: float
    timestamp: float
    memory: float
    start: float = 0.0


def _usage(last: _Point, prev: _Point) -> Usage | None:
    window = last.timestamp - prev.timestamp
    if window <= 0 or last.cpu < prev.cpu:
        return None  # "unexpected decrease in cumulative CPU usage value"
    return Usage(int(round((last.cpu - prev.cpu) / window * 1e9)), int(last.memory), last.timestamp, window)


def _container_point(c: ContainerStats) -> _Point | None:
    if c.cpu is None or c.memory is None:
        return None
    return _Point(c.cpu, c.cpu_time, c.memory, c.start_time)


class MetricsStorage:
    """Per node, the pods' and the node's last points; usage computed when a scrape is stored."""

    def __init__(self, resolution: float):
        self.resolution = resolution
        self._node_last: dict[str, _Point] = {}
        self._pod_last: dict[str, dict[tuple[str, str], dict[str, _Point]]] = {}  # node -> pod -> container
        self.nodes: dict[str, Usage] = {}
        self.pods: dict[tuple[str, str], dict[str, Usage]] = {}  # (namespace, pod) -> container -> usage
        self._pods_of_node: dict[str, set[tuple[str, str]]] = {}

    def store(self, node: str, stats: NodeStats) -> None:
        """One node's scrape replaces everything known about that node."""
        if stats.cpu is not None and stats.memory is not None:
            point = _Point(stats.cpu, stats.cpu_time, stats.memory)
            prev = self._node_last.get(node)
            usage = _usage(point, prev) if prev is not None else None
            self._node_last[node] = point
            if usage is not None:
                self.nodes[node] = usage
            else:
                self.nodes.pop(node, None)
        else:
            self._node_last.pop(node, None)
            self.nodes.pop(node, None)
        old_pods = self._pod_last.get(node, {})
        new_pods: dict[tuple[str, str], dict[str, _Point]] = {}
        for key in self._pods_of_node.get(node, ()):
            self.pods.pop(key, None)
        seen: set[tuple[str, str]] = set()
        for pod in stats.pods:
            key = (pod.namespace, pod.name)
            old = old_pods.get(key, {})
            points: dict[str, _Point] = {}
            usages: dict[str, Usage] = {}
            all_present = True  # as metrics-server: a pod is served once every container has two samples
            for c in pod.containers:
                point = _container_point(c)
                if point is None:
                    continue
                points[c.name] = point
                prev = old.get(c.name)
                if prev is not None and point.start and prev.timestamp < point.start:
                    prev = None  # restarted since: the old counter belongs to another process
                if prev is None and point.start and \
                        FRESH_CONTAINER_MIN_RESOLUTION <= point.timestamp - point.start < self.resolution:
                    prev = _Point(0.0, point.start, 0.0, point.start)
                if prev is None:
                    all_present = False
                    continue
                usage = _usage(point, prev)
                if usage is not None:  # a counter that went backwards: that container is skipped
                    usages[c.name] = usage
            new_pods[key] = points
            if usages and all_present:
                self.pods[key] = usages
                seen.add(key)
        self._pod_last[node] = new_pods
        self._pods_of_node[node] = seen

    def forget(self, node: str) -> None:
        """A node that could not be scraped (or is gone) has no metrics, as in metrics-server."""
        self._node_last.pop(node, None)
        self.nodes.pop(node, None)
        self._pod_last.pop(node, None)
        for key in self._pods_of_node.pop(node, ()):
            self.pods.pop(key, None)

    def nodes_known(self) -> set[str]:
        return set(self._node_last) | set(self._pod_last)
