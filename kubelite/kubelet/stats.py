"""The kubelet's resource metrics: /metrics/resource, read from the containers' cgroups.

Upstream's kubelet asks cAdvisor (or the CRI stats provider); kubelite reads the same numbers itself.
containerd places each container in its own cgroup (the CRI config names no parent here), so the
reliable way to find it is the container's init pid (containerd's verbose ContainerStatus info) and
/proc/<pid>/cgroup. cgroup v1 (cpuacct.usage, memory.usage_in_bytes) and v2 (cpu.stat usage_usec,
memory.current) are both read; the working set is usage minus inactive file pages, as cAdvisor
computes it. The node's own CPU and memory come from /proc/stat and /proc/meminfo. The kubelet has no
pod-level cgroups, so a pod's usage is the sum of its containers'.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from aiohttp import web

from kubelite.metrics import resource_text
from kubelite.metrics.resource_text import ContainerStats, NodeStats, PodStats

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
CONTAINER_RUNNING = 1  # runtime.v1.ContainerState
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _stat_value(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return None


def cgroup_paths(pid: int) -> dict[str, str]:
    """controller -> path from /proc/<pid>/cgroup; "" is the unified (v2) hierarchy."""
    out: dict[str, str] = {}
    for line in (_read(f"/proc/{pid}/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                out[controller] = parts[2]
    return out


def cgroup_usage(pid: int) -> tuple[float | None, float | None]:
    """(cumulative CPU seconds, working set bytes) of the cgroup the process is in."""
    paths = cgroup_paths(pid)
    cpu = memory = None
    if "cpuacct" in paths:  # v1
        for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
            text = _read(f"{CGROUP_ROOT}/{mount}{paths['cpuacct']}/cpuacct.usage")
            if text:
                cpu = int(text) / 1e9
                break
    if "memory" in paths:
        base = f"{CGROUP_ROOT}/memory{paths['memory']}"
        usage = _read(f"{base}/memory.usage_in_bytes")
        if usage:
            inactive = _stat_value(_read(f"{base}/memory.stat"), "total_inactive_file") or 0
            memory = float(max(int(usage) - inactive, 0))
    if (cpu is None or memory is None) and "" in paths:  # v2
        for root in (CGROUP_ROOT, f"{CGROUP_ROOT}/unified"):
            base = f"{root}{paths['']}"
            if cpu is None:
                usec = _stat_value(_read(f"{base}/cpu.stat"), "usage_usec")
                if usec is not None:
                    cpu = usec / 1e6
            if memory is None:
                current = _read(f"{base}/memory.current")
                if current:
                    inactive = _stat_value(_read(f"{base}/memory.stat"), "inactive_file") or 0
                    memory = float(max(int(current) - inactive, 0))
    return cpu, memory


def node_usage() -> tuple[float | None, float | None]:
    """(cumulative CPU seconds of the whole machine, working set bytes)."""
    cpu = memory = None
    stat = _read("/proc/stat") or ""
    if stat.startswith("cpu "):
        f = [int(x) for x in stat.split("\n", 1)[0].split()[1:]]
        busy = f[0] + f[1] + f[2] + sum(f[4 + i] for i in (1, 2, 3) if len(f) > 4 + i)  # no idle, no iowait
        cpu = busy / USER_HZ
    info: dict[str, int] = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        k, _, v = line.partition(":")
        if v.strip().endswith("kB"):
            info[k] = int(v.split()[0]) * 1024
    if "MemTotal" in info and "MemFree" in info:
        memory = float(max(info["MemTotal"] - info["MemFree"] - info.get("Inactive(file)", 0), 0))
    return cpu, memory


class ResourceStats:
    """Collects one /metrics/resource answer from the runtime's running containers."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self._pids: dict[str, tuple[int, float]] = {}  # container id -> (pid, start time)

    async def _pid(self, container_id: str) -> tuple[int, float]:
        hit = self._pids.get(container_id)
        if hit is None:
            status, info = await self.runtime.container_status_verbose(container_id)
            pid = 0
            try:
                pid = int(json.loads(info.get("info") or "{}").get("pid") or 0)
            except (ValueError, AttributeError):
                pass
            hit = (pid, status.started_at / 1e9 if status.started_at else 0.0)
            if pid:
                self._pids[container_id] = hit
        return hit

    async def collect(self) -> NodeStats:
        containers = await self.runtime.list_containers(state=CONTAINER_RUNNING)
        live = {c.id for c in containers}
        for gone in set(self._pids) - live:
            del self._pids[gone]
        found: list[tuple[str, str, str, int, float]] = []
        for c in containers:
            labels = c.labels
            if "io.kubernetes.pod.name" not in labels:
                continue
            try:
                pid, started = await self._pid(c.id)
            except Exception as e:  # the container went away between list and status
                log.debug("stats of container %s: %s", c.id, e)
                continue
            if pid:
                found.append((labels.get("io.kubernetes.pod.namespace", ""), labels["io.kubernetes.pod.name"],
                              labels.get("io.kubernetes.container.name", ""), pid, started))
        return await asyncio.to_thread(self._read_all, found)

    @staticmethod
    def _read_all(found: list[tuple[str, str, str, int, float]]) -> NodeStats:
        """The blocking part: cgroup and /proc files, off the event loop."""
        stats = NodeStats()
        now = round(time.time(), 3)
        stats.cpu, stats.memory = node_usage()
        stats.cpu_time = stats.memory_time = now
        pods: dict[tuple[str, str], PodStats] = {}
        for ns, pod, name, pid, started in found:
            cpu, memory = cgroup_usage(pid)
            if cpu is None and memory is None:
                stats.error = True
                continue
            p = pods.get((ns, pod))
            if p is None:
                p = pods[(ns, pod)] = PodStats(ns, pod)
                stats.pods.append(p)
            p.containers.append(ContainerStats(name, started, cpu, now, memory, now))
        for p in stats.pods:
            cpus = [c.cpu for c in p.containers if c.cpu is not None]
            mems = [c.memory for c in p.containers if c.memory is not None]
            if cpus:
                p.cpu, p.cpu_time = sum(cpus), now
            if mems:
                p.memory, p.memory_time = sum(mems), now
        return stats


async def handle(stats: ResourceStats, request: web.Request) -> web.Response:
    """GET /metrics/resource."""
    try:
        collected = await stats.collect()
    except Exception as e:
        log.warning("Error getting summary for resourceMetric prometheus endpoint: %s", e)
        collected = NodeStats(error=True)
    return web.Response(body=resource_text.render(collected).encode(),
                        headers={"Content-Type": resource_text.CONTENT_TYPE})
