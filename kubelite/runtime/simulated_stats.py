"""What a simulated node's kubelet would answer on /metrics/resource: made-up, deterministic usage.

Simulated nodes run no processes, so there is nothing to measure. To let `kubectl top` and the
HorizontalPodAutoscaler work against them, each running container is given a steady usage:

- CPU: the pod annotation `kubelite.io/simulated-cpu-usage` (a quantity per container, e.g. "250m"),
  else a tenth of the container's CPU request, else 1m; never above its CPU limit.
- memory: `kubelite.io/simulated-memory-usage` (e.g. "64Mi"), else half its memory request, else 4Mi;
  never above its memory limit.

Cumulative CPU is that rate times the time since the container started, so a scraper computing rates
from two samples (as metrics-server does) gets the rate back exactly. The node adds a small base
usage of its own (50m, 256Mi) and integrates its CPU counter over time, so it never goes backwards
when pods come and go. Changing the annotations on running pods (`kubectl annotate pod ...
--overwrite`) changes their usage from the next scrape on.
"""

from __future__ import annotations

import functools
import time
from decimal import Decimal
from typing import Any

from kubelite.api.kinds.common import parse_quantity, parse_time
from kubelite.metrics.resource_text import ContainerStats, NodeStats, PodStats

Obj = dict[str, Any]

CPU_ANNOTATION = "kubelite.io/simulated-cpu-usage"
MEMORY_ANNOTATION = "kubelite.io/simulated-memory-usage"
NODE_BASE_CPU = 0.05  # cores
NODE_BASE_MEMORY = 256 * 1024 * 1024
DEFAULT_CPU = 0.001
DEFAULT_MEMORY = 4 * 1024 * 1024


def _quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value) if value is not None else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _started(ts: str) -> float | None:
    return parse_time(ts)


def container_usage(pod: Obj, container: Obj) -> tuple[float, float]:
    """(cores, working set bytes) of one running container on a simulated node."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    cpu = _quantity(ann.get(CPU_ANNOTATION))
    if cpu is None:
        req = _quantity(requests.get("cpu"))
        cpu = req / 10 if req is not None else Decimal(str(DEFAULT_CPU))
    mem = _quantity(ann.get(MEMORY_ANNOTATION))
    if mem is None:
        req = _quantity(requests.get("memory"))
        mem = req / 2 if req is not None else Decimal(DEFAULT_MEMORY)
    cpu_limit, mem_limit = _quantity(limits.get("cpu")), _quantity(limits.get("memory"))
    if cpu_limit is not None:
        cpu = min(cpu, cpu_limit)
    if mem_limit is not None:
        mem = min(mem, mem_limit)
    return float(cpu), float(int(mem))


class SimulatedNodeStats:
    """One simulated node's kubelet-side counters: its cumulative CPU and the pods running on it."""

    def __init__(self, node_name: str, now: float | None = None):
        self.node_name = node_name
        self.cpu = 0.0
        self.last = time.time() if now is None else now
        self.rate = NODE_BASE_CPU
        # (uid, resourceVersion) -> {container: usage}: quantities are parsed once per pod version
        self._usage: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}

    def collect(self, pods: list[Obj], now: float | None = None) -> NodeStats:
        """The stats of one scrape, from the pods bound to this node (their running containers)."""
        now = round(time.time() if now is None else now, 3)  # the millisecond timestamps of the text format
        stats = NodeStats()
        rate, memory = NODE_BASE_CPU, float(NODE_BASE_MEMORY)
        usage_cache: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
        for pod in pods:
            status = pod.get("status") or {}
            if status.get("phase") != "Running":
                continue
            meta = pod["metadata"]
            version = (meta.get("uid", meta.get("name", "")), meta.get("resourceVersion", ""))
            usages = self._usage.get(version)
            if usages is None:
                usages = {c.get("name"): container_usage(pod, c) for c in (pod.get("spec") or {}).get("containers") or []}
            usage_cache[version] = usages
            ps = PodStats(meta.get("namespace", ""), meta.get("name", ""))
            for cs in status.get("containerStatuses") or []:
                started = _started(((cs.get("state") or {}).get("running") or {}).get("startedAt") or "")
                usage = usages.get(cs.get("name"))
                if started is None or usage is None:
                    continue
                cores, mem = usage
                rate += cores
                memory += mem
                ps.containers.append(ContainerStats(cs["name"], started, cores * max(now - started, 0.0), now,
                                                    mem, now))
            if ps.containers:
                ps.cpu, ps.cpu_time = sum(c.cpu or 0.0 for c in ps.containers), now
                ps.memory, ps.memory_time = sum(c.memory or 0.0 for c in ps.containers), now
                stats.pods.append(ps)
        self._usage = usage_cache
        # the node's counter grows at the rate seen at the last scrape: monotonic whatever pods do
        self.cpu += self.rate * max(now - self.last, 0.0)
        self.last, self.rate = now, rate
        stats.cpu, stats.cpu_time = self.cpu, now
        stats.memory, stats.memory_time = memory, now
        return stats
