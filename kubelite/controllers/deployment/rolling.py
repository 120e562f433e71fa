"""RollingUpdate: grow the new ReplicaSet up to replicas+maxSurge, shrink old ones while keeping
replicas-maxUnavailable pods available (upstream's deployment/rolling.go)."""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.controllers.deployment import history, progress, sync
from kubelite.controllers.deployment import util as du

log = logging.getLogger(__name__)

Obj = dict[str, Any]


async def rollout_rolling(dc: Any, d: Obj, rs_list: list[Obj]) -> None:
    new_rs, old_rss = await sync.get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
    all_rss = [*old_rss, *([new_rs] if new_rs else [])]
    if await reconcile_new_replica_set(dc, all_rss, new_rs, d):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if await reconcile_old_replica_sets(dc, all_rss, du.filter_active(old_rss), new_rs, d):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if du.deployment_complete(d, d.get("status") or {}):
        await history.cleanup_deployment(dc, d, old_rss)
    await progress.sync_rollout_status(dc, all_rss, new_rs, d)


async def reconcile_new_replica_set(dc: Any, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> bool:
    if new_rs is None:
        return False
    want = du.replicas(d)
    if du.replicas(new_rs) == want:
        return False
    if du.replicas(new_rs) > want:
        return await sync.scale_replica_set_and_record_event(dc, new_rs, want, d)
    count = du.new_rs_new_replicas(d, all_rss, new_rs)
    return await sync.scale_replica_set_and_record_event(dc, new_rs, count, d)


async def reconcile_old_replica_sets(dc: Any, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj | None,
                                     d: Obj) -> bool:
    if du.replica_count(old_rss) == 0:
        return False
    all_pods = du.replica_count(all_rss)
    min_available = du.replicas(d) - du.max_unavailable(d)
    new_unavailable = 0
    if new_rs is not None:
        new_unavailable = du.replicas(new_rs) - du.status_int(new_rs, "availableReplicas")
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    # As upstream, a failed clean-up or scale-down ends this step without an error: the ReplicaSet
    # status it read is stale (available above spec.replicas just after a scale-down) or a write
    # conflicted, and the ReplicaSet update that follows requeues the deployment anyway. Raising
    # would put the key into exponential backoff and stall the rollout.
    try:
        old_rss, cleaned = await cleanup_unhealthy_replicas(dc, old_rss, d, max_scaled_down)
    except (ValueError, StatusError) as e:
        log.debug("deployment %s: %s", d["metadata"]["name"], e)
        return False
    all_rss = [*old_rss, *([new_rs] if new_rs else [])]
    try:
        scaled_down = await scale_down_old_replica_sets_for_rolling_update(dc, all_rss, old_rss, d)
    except (ValueError, StatusError) as e:
        log.debug("deployment %s: %s", d["metadata"]["name"], e)
        return False
    return cleaned + scaled_down > 0


async def cleanup_unhealthy_replicas(dc: Any, old_rss: list[Obj], d: Obj, max_cleanup: int) -> tuple[list[Obj], int]:
    """Scale down old ReplicaSets' unavailable pods first: they serve nobody."""
    total = 0
    for rs in du.by_creation(old_rss):
        if total >= max_cleanup:
            break
        if du.replicas(rs) == 0:
            continue
        available = du.status_int(rs, "availableReplicas")
        if du.replicas(rs) == available:
            continue
        count = min(max_cleanup - total, du.replicas(rs) - available)
        new_count = du.replicas(rs) - count
        if new_count > du.replicas(rs):
            raise ValueError(f"when cleaning up unhealthy replicas, got invalid request to scale down "
                             f"{rs['metadata']['namespace']}/{rs['metadata']['name']} {du.replicas(rs)} -> {new_count}")
        await sync.scale_replica_set_and_record_event(dc, rs, new_count, d)
        total += count
    return old_rss, total


async def scale_down_old_replica_sets_for_rolling_update(dc: Any, all_rss: list[Obj], old_rss: list[Obj],
                                                         d: Obj) -> int:
    min_available = du.replicas(d) - du.max_unavailable(d)
    available = du.available_replica_count(all_rss)
    if available <= min_available:
        return 0
    to_scale_down = available - min_available
    total = 0
    for rs in du.by_creation(old_rss):
        if total >= to_scale_down:
            break
        if du.replicas(rs) == 0:
            continue
        count = min(du.replicas(rs), to_scale_down - total)
        new_count = du.replicas(rs) - count
        if new_count > du.replicas(rs):
            raise ValueError(f"when scaling down old RS, got invalid request to scale down "
                             f"{rs['metadata']['namespace']}/{rs['metadata']['name']} {du.replicas(rs)} -> {new_count}")
        await sync.scale_replica_set_and_record_event(dc, rs, new_count, d)
        total += count
    return total
