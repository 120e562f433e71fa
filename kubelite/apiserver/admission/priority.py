"""Upstream's Priority admission: a pod's priorityClassName resolves to spec.priority."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    pass


class Priority(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: dict[str, Any], old: dict | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "pods" or self._service is None:
            return
        spec = obj.setdefault("spec", {})
        pc_res = self._service.registry.get("scheduling.k8s.io", "v1", "priorityclasses")
        if pc_res is None:
            return
        name = spec.get("priorityClassName")
        if name:
            pc = await self._service.store.get(pc_res.key(None, name))
            if pc is None:
                raise errors.new_forbidden(
                    "pods", "", obj["metadata"].get("name", ""), f"no PriorityClass with name {name} was found"
                )
        else:
            items, _, _ = await self._service.store.list(pc_res.storage_prefix())
            pc = next((p for p in items if p.get("globalDefault")), None)
            if pc is None:
                spec.setdefault("priority", 0)
                spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
                return
            spec["priorityClassName"] = pc["metadata"]["name"]
        spec["priority"] = pc.get("value", 0)
        spec.setdefault("preemptionPolicy", pc.get("preemptionPolicy", "PreemptLowerPriority"))
