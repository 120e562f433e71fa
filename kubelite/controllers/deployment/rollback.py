"""Server-side rollback through the deprecated.deployment.rollback.to annotation (upstream's
deployment/rollback.go). kubectl 1.32's `rollout undo` rolls back client-side by patching the
template from the old ReplicaSet; this keeps the older API path working too."""

from __future__ import annotations

from typing import Any

from kubelite.api import meta as metautil
from kubelite.controllers.deployment import sync
from kubelite.controllers.deployment import util as du

Obj = dict[str, Any]


def rollback_to(d: Obj) -> int | None:
    raw = du.annotations(d).get(du.ROLLBACK_TO_ANNOTATION)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


async def rollback(dc: Any, d: Obj, rs_list: list[Obj]) -> None:
    new_rs, old = await sync.get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
    all_rss = [*old, *([new_rs] if new_rs else [])]
    target = rollback_to(d) or 0
    if target == 0:
        target = du.last_revision(all_rss)
        if target == 0:
            dc.recorder.event(d, "Warning", "RollbackRevisionNotFound", "Unable to find last revision.")
            await _clear_rollback_to(dc, d)
            return
    for rs in all_rss:
        if du.revision(rs) != target:
            continue
        template = (rs.get("spec") or {}).get("template")
        if du.equal_ignore_hash(template, d["spec"].get("template")):
            dc.recorder.event(d, "Warning", "RollbackTemplateUnchanged",
                              f'The rollback revision contains the same template as current deployment '
                              f'"{d["metadata"]["name"]}"')
            await _clear_rollback_to(dc, d)
            return
        t = metautil.deep_copy(template)
        labels = (t.get("metadata") or {}).get("labels") or {}
        labels.pop(du.DEFAULT_LABEL_KEY, None)
        d["spec"]["template"] = t
        ann = d["metadata"].setdefault("annotations", {})
        for k in [k for k in ann if k not in du.ANNOTATIONS_TO_SKIP]:
            del ann[k]
        for k, v in du.annotations(rs).items():
            if k not in du.ANNOTATIONS_TO_SKIP:
                ann[k] = v
        await _clear_rollback_to(dc, d)
        dc.recorder.event(d, "Normal", "DeploymentRollback",
                          f'Rolled back deployment "{d["metadata"]["name"]}" to revision {target}')
        return
    dc.recorder.event(d, "Warning", "RollbackRevisionNotFound", "Unable to find the revision to rollback to.")
    await _clear_rollback_to(dc, d)


async def _clear_rollback_to(dc: Any, d: Obj) -> None:
    d["metadata"].setdefault("annotations", {}).pop(du.ROLLBACK_TO_ANNOTATION, None)
    await dc.update_deployment(d)
