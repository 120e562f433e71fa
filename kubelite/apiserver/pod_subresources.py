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


# ---- pods/ephemeralcontainers ---------------------------------------------------------------------

# upstream's allowedEphemeralContainerFields, by JSON name: lifecycle, probes, ports and resources are
# not, since ephemeral containers must not become part of the workload
_EPHEMERAL_ALLOWED = frozenset((
    "name", "image", "command", "args", "workingDir", "envFrom", "env", "volumeMounts", "volumeDevices",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin",
    "stdinOnce", "tty", "targetContainerName"))


def ephemeral_containers_update(new: Obj, old: Obj) -> Obj:
    """podEphemeralContainersStrategy.PrepareForUpdate: everything but spec.ephemeralContainers stays
    as it was (metadata included, as ResetObjectMetaForStatus leaves it)."""
    from kubelite.api.kinds.pod import default_container

    ecs = meta.deep_copy((new.get("spec") or {}).get("ephemeralContainers") or [])
    for c in ecs:
        if isinstance(c, dict):
            default_container(c)
    out = meta.deep_copy(old)
    out["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get("resourceVersion") or \
        old["metadata"].get("resourceVersion")
    if ecs:
        out.setdefault("spec", {})["ephemeralContainers"] = ecs
    else:
        out.get("spec", {}).pop("ephemeralContainers", None)
    return out


def validate_ephemeral_containers_update(new: Obj, old: Obj) -> list:
    """ValidatePodEphemeralContainersUpdate: the new ones are valid containers with unique names, and
    the existing ones are neither removed nor changed."""
    from kubelite.api import errors as ferr
    from kubelite.api.kinds import pod as podkind
    from kubelite.api.kinds.common import validate_object_meta_update

    errs = validate_object_meta_update(new, old)
    if "kubernetes.io/config.mirror" in (old["metadata"].get("annotations") or {}):
        return [ferr.forbidden("", "static pods do not support ephemeral containers")]
    spec = new.get("spec") or {}
    volumes, _ = podkind._validate_volumes(spec.get("volumes") or [], "spec.volumes")
    others = {c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    names = set(others)
    path = "spec.ephemeralContainers"
    for i, ec in enumerate(spec.get("ephemeralContainers") or []):
        p = f"{path}[{i}]"
        errs += podkind._validate_container_common(ec, volumes, p)
        if ec.get("name") in names:
            errs.append(ferr.duplicate(f"{p}.name", ec.get("name")))
        else:
            names.add(ec.get("name"))
        target = ec.get("targetContainerName")
        if target and target not in others:
            errs.append(ferr.not_found(f"{p}.targetContainerName", target))
        for key in ec:
            if key not in _EPHEMERAL_ALLOWED and ec[key] not in (None, [], {}):
                errs.append(ferr.forbidden(f"{p}.{key}", "cannot be set for an Ephemeral Container"))
        for j, vm in enumerate(ec.get("volumeMounts") or []):
            for key in ("subPath", "subPathExpr"):
                if (vm or {}).get(key):
                    errs.append(ferr.forbidden(f"{p}.volumeMounts[{j}].{key}",
                                               "cannot be set for an Ephemeral Container"))
    current = {c.get("name"): c for c in spec.get("ephemeralContainers") or []}
    for oc in (old.get("spec") or {}).get("ephemeralContainers") or []:
        nc = current.get(oc.get("name"))
        if nc is None:
            errs.append(ferr.forbidden(path, f"existing ephemeral containers \"{oc.get('name')}\" may not be removed\n"))
        elif nc != oc:
            errs.append(ferr.forbidden(path, f"existing ephemeral containers \"{oc.get('name')}\" may not be changed\n"))
    return errs
