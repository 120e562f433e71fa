"""The Progressing condition: progress, completion, the progress deadline and pausing
(upstream's deployment/progress.go and checkPausedConditions)."""

from __future__ import annotations

import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.controllers.deployment import sync
from kubelite.controllers.deployment import util as du

Obj = dict[str, Any]


async def check_paused_conditions(dc: Any, d: Obj) -> None:
    if not du.has_progress_deadline(d):
        return
    status = d.setdefault("status", {})
    cond = du.get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") == du.TIMED_OUT:
        return  # a reported lack of progress is not overwritten by pausing
    paused_exists = cond is not None and cond.get("reason") == du.PAUSED
    paused = bool((d.get("spec") or {}).get("paused"))
    if paused and not paused_exists:
        du.set_condition(status, du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused"))
    elif not paused and paused_exists:
        du.set_condition(status, du.new_condition("Progressing", "Unknown", du.RESUMED, "Deployment is resumed"))
    else:
        return
    await dc.write_status(d)


async def sync_rollout_status(dc: Any, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> None:
    new_status = sync.calculate_status(all_rss, new_rs, d)
    if not du.has_progress_deadline(d):
        du.remove_condition(new_status, "Progressing")
    cur = du.get_condition(d.get("status") or {}, "Progressing")
    complete = new_status.get("replicas") == new_status.get("updatedReplicas") and cur is not None and \
        cur.get("reason") == du.NEW_RS_AVAILABLE
    name = d["metadata"]["name"]
    if du.has_progress_deadline(d) and not complete:
        if du.deployment_complete(d, new_status):
            msg = f'ReplicaSet "{new_rs["metadata"]["name"]}" has successfully progressed.' if new_rs else \
                f'Deployment "{name}" has successfully progressed.'
            du.set_condition(new_status, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, msg))
        elif du.deployment_progressing(d, new_status):
            msg = f'ReplicaSet "{new_rs["metadata"]["name"]}" is progressing.' if new_rs else \
                f'Deployment "{name}" is progressing.'
            cond = du.new_condition("Progressing", "True", du.RS_UPDATED, msg)
            if cur is not None and cur.get("status") == "True":
                cond["lastTransitionTime"] = cur.get("lastTransitionTime")
            du.remove_condition(new_status, "Progressing")
            du.set_condition(new_status, cond)
        elif du.deployment_timed_out(d, new_status):
            msg = f'ReplicaSet "{new_rs["metadata"]["name"]}" has timed out progressing.' if new_rs else \
                f'Deployment "{name}" has timed out progressing.'
            du.set_condition(new_status, du.new_condition("Progressing", "False", du.TIMED_OUT, msg))
    failure = next((c for rs in all_rss for c in (rs.get("status") or {}).get("conditions") or []
                    if c.get("type") == "ReplicaFailure"), None)
    if failure is not None:
        du.set_condition(new_status, du.new_condition("ReplicaFailure", failure.get("status", "True"),
                                                      failure.get("reason", ""), failure.get("message", "")))
    else:
        du.remove_condition(new_status, "ReplicaFailure")
    if sync.status_equal(d.get("status") or {}, new_status):
        requeue_stuck_deployment(dc, d, new_status)
        return
    d["status"] = new_status
    await dc.write_status(d)


def requeue_stuck_deployment(dc: Any, d: Obj, new_status: Obj) -> None:
    """Check again when the progress deadline would pass, so a stuck rollout gets reported."""
    cur = du.get_condition(new_status, "Progressing")
    if not du.has_progress_deadline(d) or cur is None:
        return
    if du.deployment_complete(d, new_status) or cur.get("reason") == du.TIMED_OUT:
        return
    since = metautil.parse_time(cur.get("lastUpdateTime")) or time.time()
    after = since + d["spec"]["progressDeadlineSeconds"] - time.time()
    key = f"{d['metadata']['namespace']}/{d['metadata']['name']}"
    if after < 1:
        dc.controller.enqueue_rate_limited(key)  # rate limited, as upstream: it must not spin
    else:
        dc.controller.enqueue_after(key, after + 1)
