"""Upstream's RuntimeClass admission: a new pod's runtimeClassName must name an existing RuntimeClass,
whose overhead becomes spec.overhead and whose scheduling constraints join the pod's nodeSelector
and tolerations. An overhead set by hand must equal the class's (it is only ever set here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.kinds.common import parse_quantity
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    pass

Obj = dict[str, Any]


def _same_resources(a: dict, b: dict) -> bool:
    """Semantic equality of two ResourceLists (1000m == 1)."""
    if set(a) != set(b):
        return False
    try:
        return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)
    except ValueError:
        return a == b


class RuntimeClassAdmission(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "pods" or self._service is None:
            return
        spec = obj.setdefault("spec", {})
        pod_name = (obj.get("metadata") or {}).get("name", "")

        def forbidden(message: str) -> errors.StatusError:
            return errors.new_forbidden("pods", "", pod_name, message)

        name = spec.get("runtimeClassName")
        rc = None
        if name is not None:
            rc_res = self._service.registry.get("node.k8s.io", "v1", "runtimeclasses")
            rc = await self._service.store.get(rc_res.key(None, name)) if rc_res is not None else None
            if rc is None:
                raise forbidden(f'pod rejected: RuntimeClass "{name}" not found')
        fixed = ((rc or {}).get("overhead") or {}).get("podFixed")
        overhead = spec.get("overhead") or {}
        if fixed is not None:
            if overhead and not _same_resources(fixed, overhead):
                raise forbidden("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
            spec["overhead"] = dict(fixed)
        elif overhead:
            raise forbidden("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
        scheduling = (rc or {}).get("scheduling") or {}
        selector = dict(spec.get("nodeSelector") or {})
        for key, value in (scheduling.get("nodeSelector") or {}).items():
            if key in selector and selector[key] != value:
                raise forbidden(f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                f"pod.spec.nodeSelector[{key}] = {selector[key]}")
            selector[key] = value
        if selector:
            spec["nodeSelector"] = selector
        tolerations = list(spec.get("tolerations") or [])
        for t in scheduling.get("tolerations") or []:
            if t not in tolerations:
                tolerations.append(t)
        if tolerations:
            spec["tolerations"] = tolerations
