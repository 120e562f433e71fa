"""Fast resource arithmetic for the scheduler: quantities as ints, a pod's effective requests.

Upstream's NodeInfo keeps MilliCPU and Memory as int64 so that Filter and Score are integer
compares; we do the same, parsing each quantity string once (memoised) instead of as a Decimal
on every cycle.
"""

from __future__ import annotations

import math
from typing import Any

from kubelite.api.kinds.common import parse_quantity

CPU, MEMORY, PODS, EPHEMERAL = "cpu", "memory", "pods", "ephemeral-storage"
# the requests scoring assumes for containers that declare none (upstream's util.DefaultMilliCPURequest)
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

_cache: dict[Any, int] = {}


def quantity_value(q: Any, milli: bool = False) -> int:
    """Quantity.Value() (rounded up) or MilliValue(); 0 when unparsable (validation rejected it already)."""
    key = (q, milli) if isinstance(q, str) else None
    if key is not None:
        v = _cache.get(key)
        if v is not None:
            return v
    try:
        d = parse_quantity(q)
        v = math.ceil(d * 1000) if milli else math.ceil(d)
    except (ValueError, ArithmeticError):
        v = 0
    if key is not None and len(_cache) < 100_000:
        _cache[key] = v
    return v


def resource_list(rl: dict | None) -> dict[str, int]:
    """A ResourceList as ints: cpu in millicores, everything else in units."""
    if not rl:
        return {}
    return {k: quantity_value(v, milli=(k == CPU)) for k, v in rl.items()}


def _add(into: dict[str, int], rl: dict[str, int]) -> None:
    for k, v in rl.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], rl: dict[str, int]) -> None:
    for k, v in rl.items():
        if v > into.get(k, 0):
            into[k] = v


def _requests(c: dict) -> dict[str, int]:
    return resource_list(((c or {}).get("resources") or {}).get("requests"))


def pod_requests(spec: dict) -> dict[str, int]:
    """resource.PodRequests: sum of containers (and sidecars), at least each init container's need
    (plus the sidecars started before it), plus spec.overhead."""
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, _requests(c))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        if (c or {}).get("restartPolicy") == "Always":
            _add(sidecars, req)
            _add(total, req)
            _max(init_max, sidecars)
        else:
            need = dict(sidecars)
            _add(need, req)
            _max(init_max, need)
    _max(total, init_max)
    _add(total, resource_list(spec.get("overhead")))
    return total


def non_zero_requests(spec: dict) -> tuple[int, int]:
    """(milli cpu, memory) with upstream's defaults for containers that request nothing (scoring only)."""
    cpu = mem = 0
    for c in spec.get("containers") or []:
        req = _requests(c)
        cpu += req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST
        mem += req.get(MEMORY) or DEFAULT_MEMORY_REQUEST
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        cpu = max(cpu, req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST)
        mem = max(mem, req.get(MEMORY) or DEFAULT_MEMORY_REQUEST)
    overhead = resource_list(spec.get("overhead"))
    return cpu + overhead.get(CPU, 0), mem + overhead.get(MEMORY, 0)
