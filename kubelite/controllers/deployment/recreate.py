"""Recreate: scale every old ReplicaSet to zero, wait until no old pod runs, then scale up the new
one (upstream's deployment/recreate.go)."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.deployment import history, progress, sync
from kubelite.controllers.deployment import util as du

Obj = dict[str, Any]


async def rollout_recreate(dc: Any, d: Obj, rs_list: list[Obj], pod_map: dict[str, list[Obj]]) -> None:
    new_rs, old_rss = await sync.get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    all_rss = [*old_rss, *([new_rs] if new_rs else [])]
    active_old = du.filter_active(old_rss)
    scaled = False
    for rs in active_old:
        if await sync.scale_replica_set_and_record_event(dc, rs, 0, d):
            scaled = True
    if scaled:
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if old_pods_running(new_rs, old_rss, pod_map):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if new_rs is None:
        new_rs, old_rss = await sync.get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
    if new_rs is not None:
        await sync.scale_replica_set_and_record_event(dc, new_rs, du.replicas(d), d)
    if du.deployment_complete(d, d.get("status") or {}):
        await history.cleanup_deployment(dc, d, old_rss)
    await progress.sync_rollout_status(dc, all_rss, new_rs, d)


def old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pod_map: dict[str, list[Obj]]) -> bool:
    """Any old pod not yet in a terminal phase (terminating ones count: they may still serve)."""
    if du.actual_replica_count(old_rss) > 0:
        return True
    new_uid = new_rs["metadata"]["uid"] if new_rs else None
    for uid, pods in pod_map.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                continue
            return True
    return False
