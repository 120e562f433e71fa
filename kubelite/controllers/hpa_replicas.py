"""The HPA's replica calculator for resource metrics (upstream pkg/controller/podautoscaler/replica_calculator.go).

Usage is in milli-units (millicores, millibytes) as upstream's MilliValue(). Pods are grouped as
upstream's groupPods does: deleted and failed pods are ignored; pending pods, and for CPU pods not
yet ready or still in their initialization period, count as unready; running pods without metrics
are missing. Unready pods count as 0% on a scale up; missing pods as 0% on a scale up and 100% of
their request (or the target, if higher) on a scale down; a change within the 10% tolerance, or one
that those assumptions would reverse, proposes the current count.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from kubelite.api.kinds.common import parse_quantity, parse_time
from kubelite.controllers.podutil import pod_ready_condition

Obj = dict[str, Any]

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
DELAY_OF_INITIAL_READINESS_STATUS = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay


class MetricsError(Exception):
    """A metric could not be computed; `detail` is upstream's error text."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class PodMetric:
    value: int  # milli
    timestamp: float = 0.0
    window: float = 0.0


def _duration_seconds(d: str) -> float:
    """A Go duration string ("15.003s", "1m0.5s", "500ms") in seconds."""
    import re

    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|us|µs|ns|h|m|s)", d or ""))


def _milli(q: Any) -> int:
    return int(math.ceil(parse_quantity(q) * 1000))


def pod_metrics(items: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
    """getPodMetrics: per pod the sum over its (named) containers; a pod missing the resource is left out."""
    out: dict[str, PodMetric] = {}
    for m in items:
        total = 0
        containers = m.get("containers") or []
        missing = not containers
        found = False
        for c in containers:
            if container and c.get("name") != container:
                continue
            value = (c.get("usage") or {}).get(resource)
            if value is None:
                missing = True
                break
            total += _milli(value)
            found = True
        if container and not found:
            missing = True
        if not missing:
            out[m["metadata"]["name"]] = PodMetric(total, parse_time(m.get("timestamp")) or 0.0,
                                                   _duration_seconds(m.get("window", "")))
    return out


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: float | None = None
               ) -> tuple[int, set[str], set[str], set[str]]:
    """groupPods: (ready count, unready, missing, ignored)."""
    now = time.time() if now is None else now
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond = pod_ready_condition(pod)
            start = parse_time((pod.get("status") or {}).get("startTime"))
            if cond is None or start is None:
                is_unready = True
            else:
                transition = parse_time(cond.get("lastTransitionTime")) or 0.0
                if start + CPU_INITIALIZATION_PERIOD > now:
                    # within initialization: unready, or no full window of metrics since it became ready
                    is_unready = cond.get("status") == "False" or metric.timestamp < transition + metric.window
                else:
                    # past it: only pods that never became ready
                    is_unready = cond.get("status") == "False" and start + DELAY_OF_INITIAL_READINESS_STATUS > transition
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: list[Obj], resource: str, container: str = "") -> dict[str, int]:
    """calculatePodRequests: containers and restartable (sidecar) init containers, in milli."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricsError(f"missing request for {resource} in container {c.get('name')} of Pod "
                                   f"{pod['metadata']['name']}")
            total += _milli(request)
        out[pod["metadata"]["name"]] = total
    return out


def utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int], target: int
                      ) -> tuple[float, int, int]:
    """GetResourceUtilizationRatio: (ratio to target, utilization %, average raw usage)."""
    total_usage = total_requests = entries = 0
    for name, m in metrics.items():
        if name not in requests:
            continue
        total_usage += m.value
        total_requests += requests[name]
        entries += 1
    if total_requests == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = (total_usage * 100) // total_requests
    return utilization / target, utilization, total_usage // entries


def _select(pods: list[Obj], metrics: dict[str, PodMetric], resource: str
            ) -> tuple[dict[str, PodMetric], int, set[str], set[str]]:
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource)
    kept = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not kept:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    return kept, ready, unready, missing


def resource_replicas(current: int, target_utilization: int, resource: str, metrics: dict[str, PodMetric],
                      pods: list[Obj], container: str = "") -> tuple[int, int, int]:
    """GetResourceReplicas: (replicas, utilization %, average raw usage in milli)."""
    metrics, ready, unready, missing = _select(pods, metrics, resource)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, utilization, raw
        return int(math.ceil(ratio * ready)), utilization, raw
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                metrics[name] = PodMetric(requests[name] * fallback // 100)
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = PodMetric(0)
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0)
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization, raw
    replicas = int(math.ceil(new_ratio * len(metrics)))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, utilization, raw
    return replicas, utilization, raw


def _usage_ratio(metrics: dict[str, PodMetric], target: int) -> tuple[float, int]:
    """GetMetricUsageRatio: (ratio to the target average, current average)."""
    average = sum(m.value for m in metrics.values()) // len(metrics)
    return average / target, average


def raw_resource_replicas(current: int, target_usage: int, resource: str, metrics: dict[str, PodMetric],
                          pods: list[Obj]) -> tuple[int, int]:
    """GetRawResourceReplicas (calcPlainMetricReplicas): (replicas, average usage in milli)."""
    metrics, ready, unready, missing = _select(pods, metrics, resource)
    ratio, usage = _usage_ratio(metrics, target_usage)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, usage
        return int(math.ceil(ratio * ready)), usage
    if missing:
        for name in missing:
            metrics[name] = PodMetric(target_usage if ratio < 1.0 else 0)
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0)
    new_ratio, _ = _usage_ratio(metrics, target_usage)
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, usage
    replicas = int(math.ceil(new_ratio * len(metrics)))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, usage
    return replicas, usage
