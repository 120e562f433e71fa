"""The kubelet's /metrics/resource endpoint format (Prometheus text exposition), written and read.

The names, help texts, labels and millisecond timestamps are upstream's (pkg/kubelet/metrics/collectors/
resource_metrics.go); the real kubelet (kubelite.kubelet.stats) and simulated nodes
(kubelite.runtime.simulated_stats) write it, the metrics server (kubelite.metrics.server) reads it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = (
    ("container_cpu_usage_seconds_total", "counter",
     "[STABLE] Cumulative cpu time consumed by the container in core-seconds"),
    ("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes"),
    ("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds"),
    ("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds"),
    ("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes"),
    ("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"),
    ("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes"),
    ("resource_scrape_error", "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"),
    ("scrape_error", "gauge", "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container "
                              "metrics, 0 otherwise"),
)


@dataclass
class ContainerStats:
    """One container's sample: cumulative CPU core-seconds and working set, each with its time (s)."""

    name: str
    start_time: float  # unix seconds; 0 when unknown
    cpu: float | None = None
    cpu_time: float = 0.0
    memory: float | None = None
    memory_time: float = 0.0


@dataclass
class PodStats:
    namespace: str
    name: str
    containers: list[ContainerStats] = field(default_factory=list)
    cpu: float | None = None  # the pod's cgroup, when the node measures it
    cpu_time: float = 0.0
    memory: float | None = None
    memory_time: float = 0.0


@dataclass
class NodeStats:
    """What one scrape of a kubelet says (upstream's summary subset that /metrics/resource exports)."""

    cpu: float | None = None
    cpu_time: float = 0.0
    memory: float | None = None
    memory_time: float = 0.0
    pods: list[PodStats] = field(default_factory=list)
    error: bool = False


def go_float(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as the Prometheus text encoder writes values: the shortest
    digits that read back exactly, in exponent form below 1e-4 and from 1e6 on."""
    if v == 0:
        return "0"
    if v != v or v in (math.inf, -math.inf):
        return "NaN" if v != v else ("+Inf" if v > 0 else "-Inf")
    r = repr(float(v))
    neg = r[0] == "-"
    if neg:
        r = r[1:]
    if "e" in r:
        mant, _, e = r.partition("e")
        whole, _, frac = mant.partition(".")
        digits, exp = (whole + frac).rstrip("0"), int(e)
    else:
        whole, _, frac = r.partition(".")
        if frac == "0":
            frac = ""
        if whole != "0":
            digits, exp = (whole + frac).rstrip("0"), len(whole) - 1
        else:
            stripped = frac.lstrip("0")
            digits, exp = stripped.rstrip("0"), -(len(frac) - len(stripped)) - 1
        if -4 <= exp < 6:
            return ("-" if neg else "") + (whole + "." + frac if frac else whole)
    m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if neg else ''}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _ms(t: float) -> int:
    return int(t * 1000)


def render(stats: NodeStats) -> str:
    """The /metrics/resource body for one scrape, families in name order as the registry gathers them."""
    fams: dict[str, list[str]] = {name: [] for name, _, _ in _HELP}

    def labels(pod: PodStats, container: str | None = None) -> str:
        c = f'container="{container}",' if container is not None else ""
        return f'{{{c}namespace="{pod.namespace}",pod="{pod.name}"}}'

    if stats.cpu is not None:
        fams["node_cpu_usage_seconds_total"].append(f" {go_float(stats.cpu)} {_ms(stats.cpu_time)}")
    if stats.memory is not None:
        fams["node_memory_working_set_bytes"].append(f" {go_float(stats.memory)} {_ms(stats.memory_time)}")
    for pod in stats.pods:
        for c in pod.containers:
            lab = labels(pod, c.name)
            if c.start_time > 0:
                fams["container_start_time_seconds"].append(f"{lab} {go_float(c.start_time)}")
            if c.cpu is not None:
                fams["container_cpu_usage_seconds_total"].append(f"{lab} {go_float(c.cpu)} {_ms(c.cpu_time)}")
            if c.memory is not None:
                fams["container_memory_working_set_bytes"].append(f"{lab} {go_float(c.memory)} {_ms(c.memory_time)}")
        if pod.cpu is not None:
            fams["pod_cpu_usage_seconds_total"].append(f"{labels(pod)} {go_float(pod.cpu)} {_ms(pod.cpu_time)}")
        if pod.memory is not None:
            fams["pod_memory_working_set_bytes"].append(f"{labels(pod)} {go_float(pod.memory)} {_ms(pod.memory_time)}")
    err = "1" if stats.error else "0"
    fams["resource_scrape_error"].append(f" {err}")
    fams["scrape_error"].append(f" {err}")
    out: list[str] = []
    for name, mtype, help_text in _HELP:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {mtype}\n")
        out.extend(f"{name}{line}\n" for line in sorted(fams[name]))
    return "".join(out)


_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_WANTED = ("container_", "node_", "pod_", "resource_scrape_error")


def parse(text: str, now: float) -> NodeStats:
    """Read a /metrics/resource body; samples without a timestamp are taken as of `now`."""
    stats = NodeStats()
    pods: dict[tuple[str, str], PodStats] = {}
    containers: dict[str, ContainerStats] = {}  # by the raw label text: one regex per container, not per line
    pods_by_labels: dict[str, PodStats] = {}

    def pod_of(raw: str) -> PodStats:
        p = pods_by_labels.get(raw)
        if p is None:
            lab = dict(_LABEL.findall(raw))
            key = (lab.get("namespace", ""), lab.get("pod", ""))
            p = pods.get(key)
            if p is None:
                p = pods[key] = PodStats(*key)
                stats.pods.append(p)
            pods_by_labels[raw] = p
        return p

    def container_of(raw: str) -> ContainerStats:
        c = containers.get(raw)
        if c is None:
            lab = dict(_LABEL.findall(raw))
            c = containers[raw] = ContainerStats(lab.get("container", ""), 0.0)
            pod_of(raw).containers.append(c)  # its namespace and pod labels name the pod
        return c

    for line in text.splitlines():
        if not line or line[0] == "#" or not line.startswith(_WANTED):
            continue
        brace = line.find("{")
        if brace >= 0:
            close = line.rindex("}")
            name, lab = line[:brace], line[brace + 1:close]
            rest = line[close + 1:].split()
        else:
            parts = line.split()
            name, lab, rest = parts[0], "", parts[1:]
        if not rest:
            continue
        try:
            value = float(rest[0])
            ts = int(rest[1]) / 1000.0 if len(rest) > 1 else now
        except ValueError:
            continue
        if name == "node_cpu_usage_seconds_total":
            stats.cpu, stats.cpu_time = value, ts
        elif name == "node_memory_working_set_bytes":
            stats.memory, stats.memory_time = value, ts
        elif name == "container_cpu_usage_seconds_total":
            c = container_of(lab)
            c.cpu, c.cpu_time = value, ts
        elif name == "container_memory_working_set_bytes":
            c = container_of(lab)
            c.memory, c.memory_time = value, ts
        elif name == "container_start_time_seconds":
            container_of(lab).start_time = value
        elif name == "pod_cpu_usage_seconds_total":
            p = pod_of(lab)
            p.cpu, p.cpu_time = value, ts
        elif name == "pod_memory_working_set_bytes":
            p = pod_of(lab)
            p.memory, p.memory_time = value, ts
        elif name == "resource_scrape_error":
            stats.error = value != 0
    return stats
