"""pods/binding and pods/eviction: the two pod subresources that write through the API server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api import errors, meta
from kubelite.api.registry import Resource
from kubelite.api.selectors import selector_from_label_selector

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

Obj = dict[str, Any]


async def bind(service: APIService, res: Resource, namespace: str | None, name: str, binding: Obj,
               dry_run: bool) -> Obj:
    """Upstream's BindingREST: set spec.nodeName once and mark the pod scheduled."""
    target = binding.get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.new_invalid("Binding", "", name, [errors.required("target.name")])
    for _ in range(5):
        pod = await service.get(res, namespace, name)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.new_conflict(res.plural, res.group, name, "pod is being deleted, cannot be assigned to a host")
        if pod.get("spec", {}).get("nodeName"):
            raise errors.new_conflict(res.plural, res.group, name,
                                      f"pod {name} is already assigned to node \"{pod['spec']['nodeName']}\"")
        new = meta.deep_copy(pod)
        new["spec"]["nodeName"] = node
        annotations = (binding.get("metadata") or {}).get("annotations")
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        status = new.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                         "lastTransitionTime": meta.now_rfc3339()})
        status["conditions"] = conds
        if dry_run:
            break
        try:
            # binding writes spec and status at once, bypassing the status strategy, as upstream does
            await service.store.update(res.key(namespace, name), new, int(pod["metadata"]["resourceVersion"]))
            break
        except Exception as e:  # ConflictError: someone else changed the pod, retry
            from kubelite.storage.interface import ConflictError

            if not isinstance(e, ConflictError):
                raise
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def evict(service: APIService, res: Resource, namespace: str | None, name: str, eviction: Obj,
                dry_run: bool) -> Obj:
    """Upstream's EvictionREST: delete the pod unless a PodDisruptionBudget forbids it (429)."""
    pod = await service.get(res, namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
        pdb_res = service.registry.get("policy", "v1", "poddisruptionbudgets")
        if pdb_res is not None:
            pdbs = await service.list(pdb_res, namespace)
            labels = pod["metadata"].get("labels") or {}
            for pdb in pdbs["items"]:
                sel = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
                if sel is None or not sel.matches(labels):
                    continue
                if ((pdb.get("status") or {}).get("disruptionsAllowed") or 0) < 1:
                    raise errors.StatusError(
                        429, "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        {"causes": [{"reason": "DisruptionBudget",
                                     "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                     f"{(pdb.get('status') or {}).get('desiredHealthy', 0)} healthy pods and has "
                                     f"{(pdb.get('status') or {}).get('currentHealthy', 0)} currently"}]},
                    )
    await service.delete(res, namespace, name, eviction.get("deleteOptions") or {}, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
