"""Upstream's LimitRanger admission: the LimitRanges of a namespace default and bound new pods.

For each Container item, containers missing a limit get `default` and missing a request get
`defaultRequest` (noted in the `kubernetes.io/limit-ranger` annotation); then every container (and
for Pod items, the pod's summed requests and limits) must respect min, max and
maxLimitRequestRatio, else 403 `pods "x" is forbidden: minimum cpu usage per Container is 50m, but
request is 10m`. Pod updates are left alone: containers' resources are immutable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.kinds.common import parse_quantity
from kubelite.api.kinds.pod import compute_qos
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    pass

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"


def _q(v: Any) -> Decimal | None:
    try:
        return parse_quantity(v)
    except ValueError:
        return None


def _merge_defaults(container: Obj, limits: dict, requests: dict, prefix: str) -> list[str]:
    """mergeContainerResources: fill what the container leaves unset; say what was set."""
    res = container.get("resources")
    if not isinstance(res, dict):
        res = container["resources"] = {}
    notes = []
    for field, defaults, word in (("requests", requests, "request"), ("limits", limits, "limit")):
        have = dict(res.get(field) or {})
        added = sorted(k for k in defaults if k not in have)
        if added:
            have.update({k: defaults[k] for k in added})
            res[field] = have
            notes.append(f"{', '.join(added)} {word} for {prefix} {container.get('name', '')}")
    return notes


def _min(kind: str, name: str, enforced: str, requests: dict, limits: dict) -> str | None:
    e = _q(enforced)
    if name not in requests:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if e is not None and (_q(requests[name]) or 0) < e:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {requests[name]}"
    if e is not None and name in limits and (_q(limits[name]) or 0) < e:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {limits[name]}"
    return None


def _max(kind: str, name: str, enforced: str, requests: dict, limits: dict) -> str | None:
    e = _q(enforced)
    if name not in limits:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if e is not None and (_q(limits[name]) or 0) > e:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {limits[name]}"
    if e is not None and name in requests and (_q(requests[name]) or 0) > e:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {requests[name]}"
    return None


def _ratio(kind: str, name: str, enforced: str, requests: dict, limits: dict) -> str | None:
    req, lim = _q(requests.get(name, "0")) or 0, _q(limits.get(name, "0")) or 0
    head = f"{name} max limit to request ratio per {kind} is {enforced}"
    if req == 0:
        return f"{head}, but no request is specified or request is 0"
    if lim == 0:
        return f"{head}, but no limit is specified or limit is 0"
    ratio = lim / req
    if ratio > (_q(enforced) or 0):
        return f"{head}, but provided ratio is {float(ratio):f}"
    return None


def _sum(containers: list[Obj], field: str) -> dict[str, str]:
    total: dict[str, Decimal] = {}
    for c in containers:
        for k, v in (((c or {}).get("resources") or {}).get(field) or {}).items():
            total[k] = total.get(k, Decimal(0)) + (_q(v) or 0)
    return {k: str(v) for k, v in total.items()}


def _check(item: Obj, kind: str, requests: dict, limits: dict) -> list[str]:
    out = []
    for key, check in (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio)):
        for name in sorted(item.get(key) or {}):
            msg = check(kind, name, str(item[key][name]), requests, limits)
            if msg:
                out.append(msg)
    return out


class LimitRanger(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "pods" or self._service is None:
            return
        lr_res = self._service.registry.get("", "v1", "limitranges")
        meta = obj.get("metadata") or {}
        if lr_res is None or meta.get("deletionTimestamp"):
            return
        ranges, _, _ = await self._service.store.list(lr_res.storage_prefix() + meta.get("namespace", "") + "/")
        if not ranges:
            return
        spec = obj.setdefault("spec", {})
        containers, inits = spec.get("containers") or [], spec.get("initContainers") or []
        items = [i for lr in sorted(ranges, key=lambda r: r["metadata"]["name"])
                 for i in (lr.get("spec") or {}).get("limits") or []]
        limits: dict = {}
        requests: dict = {}
        for item in items:
            if item.get("type") == "Container":
                limits.update(item.get("default") or {})
                requests.update(item.get("defaultRequest") or {})
        notes: list[str] = []
        if limits or requests:
            for c in containers:
                notes += _merge_defaults(c, limits, requests, "container")
            for c in inits:
                notes += _merge_defaults(c, limits, requests, "init container")
        if notes:
            annotations = dict(meta.get("annotations") or {})
            annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
            obj["metadata"] = {**meta, "annotations": annotations}
            status = obj.get("status")
            if isinstance(status, dict) and status.get("qosClass"):  # computed before the defaults came
                status["qosClass"] = compute_qos(spec)
        problems: list[str] = []
        for item in items:
            if item.get("type") == "Container":
                for c in list(containers) + list(inits):
                    r = (c or {}).get("resources") or {}
                    problems += _check(item, "Container", r.get("requests") or {}, r.get("limits") or {})
            elif item.get("type") == "Pod":
                problems += _check(item, "Pod", _sum(containers, "requests"), _sum(containers, "limits"))
        if problems:
            message = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            raise errors.new_forbidden("pods", "", meta.get("name", ""), message)
