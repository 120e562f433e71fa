"""Deletion as upstream does it: preconditions, graceful deletion, finalizers and propagation policy.

An object with finalizers (or a pod still running on a node, or a namespace with spec.finalizers)
is not removed at once: it gets metadata.deletionTimestamp and stays until whoever owns the
finalizer (garbage collector, namespace controller, kubelet) lets go.
"""

from __future__ import annotations

from typing import Any

from kubelite.api import errors, meta
from kubelite.api.registry import Resource

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def check_preconditions(res: Resource, obj: Obj, options: Obj) -> None:
    pre = options.get("preconditions") or {}
    m = obj["metadata"]
    name = m["name"]
    if pre.get("uid") and pre["uid"] != m.get("uid"):
        raise errors.new_conflict(res.plural, res.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {m.get('uid')}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
        raise errors.new_conflict(
            res.plural, res.group, name,
            f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
            f"ResourceVersion in object meta: {m.get('resourceVersion')}")


def _is_pod(res: Resource) -> bool:
    return res.group == "" and res.plural == "pods"


def _is_namespace(res: Resource) -> bool:
    return res.group == "" and res.plural == "namespaces"


def _grace_period(res: Resource, obj: Obj, options: Obj) -> int:
    """Upstream's pod strategy CheckGracefulDelete: unscheduled or finished pods go at once."""
    if not _is_pod(res):
        return 0
    grace = options.get("gracePeriodSeconds")
    spec = obj.get("spec") or {}
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    if not spec.get("nodeName"):
        return 0
    if (obj.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        return 0
    return max(int(grace), 0)


def begin_deletion(res: Resource, obj: Obj, options: Obj) -> tuple[Obj | None, bool]:
    """Return (updated object to store, or None if nothing to change; delete immediately?)."""
    m = obj["metadata"]
    finalizers = list(m.get("finalizers") or [])
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is True:
        policy = "Orphan"
    if policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    elif policy == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in (FOREGROUND, ORPHAN)] if not m.get("deletionTimestamp") else finalizers

    grace = _grace_period(res, obj, options)
    ns_finalizers = _is_namespace(res) and (obj.get("spec") or {}).get("finalizers")

    if m.get("deletionTimestamp"):
        # already terminating: only a shorter grace period (e.g. --force --grace-period=0) changes things
        cur = m.get("deletionGracePeriodSeconds") or 0
        if _is_pod(res) and options.get("gracePeriodSeconds") is not None and grace < cur:
            if grace == 0 and not finalizers:
                return None, True
            new = meta.deep_copy(obj)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            return new, False
        if finalizers != list(m.get("finalizers") or []):
            new = meta.deep_copy(obj)
            new["metadata"]["finalizers"] = finalizers
            return new, False
        return None, False

    if not finalizers and grace == 0 and not ns_finalizers:
        return None, True
    new = meta.deep_copy(obj)
    nm = new["metadata"]
    import time

    nm["deletionTimestamp"] = meta.now_rfc3339(time.time() + grace)
    nm["deletionGracePeriodSeconds"] = grace
    if finalizers:
        nm["finalizers"] = finalizers
    if nm.get("generation"):
        nm["generation"] += 1
    if _is_namespace(res):
        new.setdefault("status", {})["phase"] = "Terminating"
    return new, False


def deletion_complete(res: Resource, obj: Obj) -> bool:
    """An object being deleted whose last finalizer went (and whose grace period is over) is removed."""
    m = obj["metadata"]
    if not m.get("deletionTimestamp") or m.get("finalizers"):
        return False
    if _is_namespace(res):
        return not (obj.get("spec") or {}).get("finalizers")
    if _is_pod(res):
        return (m.get("deletionGracePeriodSeconds") or 0) == 0
    return True
