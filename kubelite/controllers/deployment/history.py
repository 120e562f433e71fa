"""Revisions and the revisionHistoryLimit cleanup of old ReplicaSets (upstream sync.go cleanupDeployment)."""

from __future__ import annotations

from typing import Any

from kubelite.api.errors import StatusError
from kubelite.controllers.deployment import util as du

Obj = dict[str, Any]


def max_revision(rss: list[Obj]) -> int:
    return max((du.revision(rs) for rs in rss), default=0)


async def cleanup_deployment(dc: Any, d: Obj, old_rss: list[Obj]) -> None:
    """Delete the oldest ReplicaSets beyond revisionHistoryLimit, only those fully scaled down."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return
    cleanable = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
    diff = len(cleanable) - int(limit)
    if diff <= 0:
        return
    cleanable.sort(key=lambda r: (du.revision(r), du.created(r), r["metadata"]["name"]))
    for rs in cleanable[:diff]:
        st = rs.get("status") or {}
        if (st.get("replicas") or 0) != 0 or du.replicas(rs) != 0 or \
                (rs["metadata"].get("generation") or 0) > (st.get("observedGeneration") or 0):
            continue
        m = rs["metadata"]
        try:
            await dc.replicasets.delete(m["name"], namespace=m["namespace"], preconditions={"uid": m["uid"]})
        except StatusError as e:
            if e.code != 404:
                raise
