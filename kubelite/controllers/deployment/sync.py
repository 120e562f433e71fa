"""Finding the new ReplicaSet, revisions, and scaling (upstream's deployment/sync.go).

`scale` implements proportional scaling: when a deployment is resized mid-rollout the extra (or
missing) replicas are spread over its active ReplicaSets in proportion to their size, using the
max-replicas annotation each carries from the last time it was sized.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.controllers.deployment import history
from kubelite.controllers.deployment import util as du
from kubelite.controllers.refmanager import controller_ref

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def find_new_and_old(d: Obj, rs_list: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """FindNewReplicaSet (oldest RS whose template equals the deployment's) and all the others."""
    template = (d.get("spec") or {}).get("template")
    new_rs = None
    for rs in du.by_creation(rs_list):
        if du.equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            new_rs = rs
            break
    old = [rs for rs in rs_list if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
    return new_rs, old


async def get_all_replica_sets_and_sync_revision(dc: Any, d: Obj, rs_list: list[Obj],
                                                 create: bool) -> tuple[Obj | None, list[Obj]]:
    existing, old = find_new_and_old(d, rs_list)
    new_rs = await get_new_replica_set(dc, d, rs_list, existing, old, create)
    return new_rs, old


async def get_new_replica_set(dc: Any, d: Obj, rs_list: list[Obj], existing: Obj | None, old_rss: list[Obj],
                              create: bool) -> Obj | None:
    max_old = history.max_revision(old_rss)
    new_revision = str(max_old + 1)
    if existing is not None:
        rs = metautil.deep_copy(existing)
        changed = du.set_new_rs_annotations(d, rs, new_revision, True)
        mrs = (d.get("spec") or {}).get("minReadySeconds") or 0
        if changed or ((rs.get("spec") or {}).get("minReadySeconds") or 0) != mrs:
            rs["spec"]["minReadySeconds"] = mrs
            rs = await dc.replicasets.update(rs)
            existing.clear()
            existing.update(rs)
            rs = existing
        needs_update = _set_deployment_revision(d, du.annotations(rs).get(du.REVISION_ANNOTATION, ""))
        status = d.setdefault("status", {})
        if du.has_progress_deadline(d) and du.get_condition(status, "Progressing") is None:
            du.set_condition(status, du.new_condition("Progressing", "True", du.FOUND_NEW_RS,
                                                      f'Found new replica set "{rs["metadata"]["name"]}"'))
            needs_update = True
        if needs_update:
            await dc.write_status(d)
        return rs
    if not create:
        return None

    status = d.setdefault("status", {})
    spec = d["spec"]
    template = metautil.deep_copy(spec.get("template") or {})
    pod_hash = du.compute_hash(spec.get("template") or {}, status.get("collisionCount"))
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = dict(tmeta.get("labels") or {}, **{du.DEFAULT_LABEL_KEY: pod_hash})
    selector = metautil.deep_copy(spec.get("selector") or {})
    selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{du.DEFAULT_LABEL_KEY: pod_hash})
    dm = d["metadata"]
    new_rs: Obj = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dm['name']}-{pod_hash}", "namespace": dm["namespace"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": dm["name"],
                                 "uid": dm["uid"], "controller": True, "blockOwnerDeletion": True}],
            "labels": dict(tmeta["labels"]),
        },
        "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds") or 0, "selector": selector,
                 "template": template},
    }
    new_replicas = du.new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
    new_rs["spec"]["replicas"] = new_replicas
    du.set_new_rs_annotations(d, new_rs, new_revision, False)
    already_exists = False
    try:
        created = await dc.replicasets.create(new_rs, namespace=dm["namespace"])
    except StatusError as e:
        if e.reason != "AlreadyExists":
            if du.has_progress_deadline(d):
                du.set_condition(status, du.new_condition(
                    "Progressing", "False", du.FAILED_RS_CREATE,
                    f'Failed to create new replica set "{new_rs["metadata"]["name"]}": {e.message}'))
                await dc.write_status(d)
            dc.recorder.event(d, "Warning", du.FAILED_RS_CREATE,
                              f'Failed to create new replica set "{new_rs["metadata"]["name"]}": {e.message}')
            raise
        already_exists = True
        found = await dc.replicasets.get(new_rs["metadata"]["name"], namespace=dm["namespace"])
        ref = controller_ref(found)
        if ref is not None and ref.get("uid") == dm["uid"] and \
                du.equal_ignore_hash((found.get("spec") or {}).get("template"), spec.get("template")):
            created = found
        else:
            # a hash collision: bump collisionCount so the next sync computes another name
            count = (status.get("collisionCount") or 0) + 1
            status["collisionCount"] = count
            log.info("found a hash collision for deployment %s/%s - bumping collisionCount to %d",
                     dm["namespace"], dm["name"], count)
            await dc.write_status(d)
            raise
    if not already_exists and new_replicas > 0:
        dc.recorder.event(d, "Normal", "ScalingReplicaSet",
                          f"Scaled up replica set {created['metadata']['name']} to {new_replicas} from 0")
    needs_update = _set_deployment_revision(d, new_revision)
    if not already_exists and du.has_progress_deadline(d):
        du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_CREATED,
                                                  f'Created new replica set "{created["metadata"]["name"]}"'))
        needs_update = True
    if needs_update:
        await dc.write_status(d)
    return created


def _set_deployment_revision(d: Obj, rev: str) -> bool:
    ann = d["metadata"].setdefault("annotations", {})
    if ann.get(du.REVISION_ANNOTATION) != rev:
        ann[du.REVISION_ANNOTATION] = rev
        return True
    return False


# ------------------------------------------------------------------------ scaling
def is_scaling_event(d: Obj, rs_list: list[Obj]) -> bool:
    """The deployment was resized: some active ReplicaSet was sized for another replica count."""
    new_rs, old = find_new_and_old(d, rs_list)
    for rs in du.filter_active([new_rs, *old]):
        desired = du.annotations(rs).get(du.DESIRED_REPLICAS_ANNOTATION)
        if desired is None:
            continue
        try:
            if int(desired) != du.replicas(d):
                return True
        except ValueError:
            continue
    return False


async def sync(dc: Any, d: Obj, rs_list: list[Obj]) -> None:
    """Scale only (paused deployments and scaling events), then status."""
    new_rs, old = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    await scale(dc, d, new_rs, old)
    from kubelite.controllers.deployment import rollback

    if (d.get("spec") or {}).get("paused") and rollback.rollback_to(d) is None:
        await history.cleanup_deployment(dc, d, old)
    await sync_deployment_status(dc, [*old, *([new_rs] if new_rs else [])], new_rs, d)


async def sync_status_only(dc: Any, d: Obj, rs_list: list[Obj]) -> None:
    new_rs, old = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    await sync_deployment_status(dc, [*old, *([new_rs] if new_rs else [])], new_rs, d)


async def scale(dc: Any, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
    want = du.replicas(d)
    target = du.find_active_or_latest(new_rs, old_rss)
    if target is not None:
        if du.replicas(target) == want:
            return
        await scale_replica_set_and_record_event(dc, target, want, d)
        return
    if du.is_saturated(d, new_rs):
        for rs in du.filter_active(old_rss):
            await scale_replica_set_and_record_event(dc, rs, 0, d)
        return
    if not du.is_rolling(d):
        return
    all_rss = du.filter_active([*old_rss, new_rs])
    current = du.replica_count(all_rss)
    allowed = want + du.max_surge(d) if want > 0 else 0
    to_add = allowed - current
    if to_add > 0:
        all_rss.sort(key=lambda r: (-du.replicas(r), -du.created(r), r["metadata"]["name"]))
        op = "up"
    elif to_add < 0:
        all_rss.sort(key=lambda r: (-du.replicas(r), du.created(r), r["metadata"]["name"]))
        op = "down"
    else:
        op = ""
    added = 0
    sizes: dict[str, int] = {}
    for rs in all_rss:
        if to_add != 0:
            p = du.proportion(rs, d, to_add, added)
            sizes[rs["metadata"]["name"]] = du.replicas(rs) + p
            added += p
        else:
            sizes[rs["metadata"]["name"]] = du.replicas(rs)
    leftover = to_add - added
    if leftover != 0 and all_rss:
        first = all_rss[0]["metadata"]["name"]
        sizes[first] = max(sizes[first] + leftover, 0)
    for rs in all_rss:
        await scale_replica_set(dc, rs, sizes[rs["metadata"]["name"]], d, op)


async def scale_replica_set_and_record_event(dc: Any, rs: Obj, new_scale: int, d: Obj) -> bool:
    if du.replicas(rs) == new_scale:
        return False
    op = "up" if du.replicas(rs) < new_scale else "down"
    return await scale_replica_set(dc, rs, new_scale, d, op)


async def scale_replica_set(dc: Any, rs: Obj, new_scale: int, d: Obj, op: str) -> bool:
    """Resize one ReplicaSet and stamp desired/max replicas; event ScalingReplicaSet (1.32 wording)."""
    old_scale = du.replicas(rs)
    size_changed = old_scale != new_scale
    want, surge = du.replicas(d), du.max_surge(d)
    if not size_changed and not du.replicas_annotations_need_update(rs, want, want + surge):
        return False
    copy = metautil.deep_copy(rs)
    copy["spec"]["replicas"] = new_scale
    du.set_replicas_annotations(copy, want, want + surge)
    out = await dc.replicasets.update(copy)
    rs.clear()
    rs.update(out)
    if size_changed:
        dc.recorder.event(d, "Normal", "ScalingReplicaSet",
                          f"Scaled {op} replica set {rs['metadata']['name']} to {new_scale} from {old_scale}")
    return size_changed


# ------------------------------------------------------------------------ status
def calculate_status(all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> Obj:
    available = du.available_replica_count(all_rss)
    total = du.replica_count(all_rss)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation", 0),
        "replicas": du.actual_replica_count(all_rss),
        "updatedReplicas": du.actual_replica_count([new_rs]),
        "readyReplicas": du.ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = metautil.deep_copy(old.get("conditions") or [])
    if available >= du.replicas(d) - du.max_unavailable(d):
        du.set_condition(status, du.new_condition("Available", "True", du.MIN_AVAILABLE,
                                                  "Deployment has minimum availability."))
    else:
        du.set_condition(status, du.new_condition("Available", "False", du.MIN_UNAVAILABLE,
                                                  "Deployment does not have minimum availability."))
    return status


def status_equal(a: Obj, b: Obj) -> bool:
    def norm(s: Obj) -> Obj:
        return {k: v for k, v in s.items() if v not in (0, None, [])}
    return norm(a or {}) == norm(b or {})


async def sync_deployment_status(dc: Any, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> None:
    status = calculate_status(all_rss, new_rs, d)
    if status_equal(d.get("status") or {}, status):
        return
    d["status"] = status
    await dc.write_status(d)
