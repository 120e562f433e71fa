"""Deployment helpers from upstream's pkg/controller/deployment/util: annotations, hashing,
conditions, fenceposts and replica arithmetic. Pure functions on plain dicts."""

from __future__ import annotations

import math
import struct
import time
from typing import Any

import orjson

from kubelite.api import meta as metautil

Obj = dict[str, Any]

DEFAULT_LABEL_KEY = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
MAX_REV_HISTORY_LENGTH = 2000

ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                                 DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, ROLLBACK_TO_ANNOTATION})

# Progressing / Available condition reasons
NEW_RS_CREATED = "NewReplicaSetCreated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

MAX_INT32 = 2**31 - 1
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def annotations(obj: Obj) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def replicas(obj: Obj) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_int(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def revision(obj: Obj) -> int:
    try:
        return int(annotations(obj).get(REVISION_ANNOTATION, "0") or 0)
    except ValueError:
        return 0


def created(obj: Obj) -> float:
    return metautil.parse_time((obj.get("metadata") or {}).get("creationTimestamp")) or 0.0


def by_creation(rss: list[Obj]) -> list[Obj]:
    """controller.ReplicaSetsByCreationTimestamp: oldest first, name breaks ties."""
    return sorted(rss, key=lambda r: (created(r), r["metadata"]["name"]))


# ------------------------------------------------------------------------ hashing
def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: map each byte onto an alphabet without vowels or look-alikes."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in s.encode())


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def semantic(v: Any) -> Any:
    """A JSON value with null, {} and [] members dropped: what a typed Go struct would make of it
    (kubectl sends `creationTimestamp: null` and `resources: {}` in templates it patches)."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = semantic(x)
            if x is None or x == {} or x == []:
                continue
            out[k] = x
        return out
    if isinstance(v, list):
        return [semantic(x) for x in v]
    return v


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """controller.ComputeHash: FNV-32a over a stable print of the template (+ collisionCount)."""
    data = orjson.dumps(semantic(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF)
    return safe_encode(str(fnv32a(data)))


def _strip_hash(template: Obj | None) -> Obj:
    t = semantic(template or {})
    m = t.get("metadata") or {}
    labels = m.get("labels") or {}
    labels.pop(DEFAULT_LABEL_KEY, None)
    if labels:
        m["labels"] = labels
    else:
        m.pop("labels", None)
    for k in [k for k, v in m.items() if v in (None, {}, [])]:
        m.pop(k)
    if m:
        t["metadata"] = m
    else:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """EqualIgnoreHash: templates equal once the pod-template-hash label is dropped."""
    return _strip_hash(a) == _strip_hash(b)


# ------------------------------------------------------------------------ fenceposts
def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = int(s[:-1])
        v = pct * total / 100
        return int(math.ceil(v)) if round_up else int(math.floor(v))
    return int(s)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down; both 0 becomes unavailable 1."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    want = replicas(d)
    surge = scaled_value(ru.get("maxSurge", "25%"), want, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(d)[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


# ------------------------------------------------------------------------ replica counts
def replica_count(rss: list[Obj | None]) -> int:
    return sum(replicas(r) for r in rss if r is not None)


def actual_replica_count(rss: list[Obj | None]) -> int:
    return sum(status_int(r, "replicas") for r in rss if r is not None)


def ready_replica_count(rss: list[Obj | None]) -> int:
    return sum(status_int(r, "readyReplicas") for r in rss if r is not None)


def available_replica_count(rss: list[Obj | None]) -> int:
    return sum(status_int(r, "availableReplicas") for r in rss if r is not None)


def filter_active(rss: list[Obj | None]) -> list[Obj]:
    return [r for r in rss if r is not None and replicas(r) > 0]


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now."""
    if not is_rolling(d):
        return replicas(d)
    current = replica_count(all_rss)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = annotations(rs).get(DESIRED_REPLICAS_ANNOTATION)
    try:
        desired_n = int(desired) if desired is not None else None
    except ValueError:
        return False
    return replicas(rs) == replicas(d) and desired_n == replicas(d) and \
        status_int(rs, "availableReplicas") == replicas(d)


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    old_sorted = sorted(old_rss, key=lambda r: (created(r), r["metadata"]["name"]), reverse=True)
    all_rss = filter_active([new_rs, *old_sorted])
    if len(all_rss) == 0:
        return new_rs if new_rs is not None else old_sorted[0]
    if len(all_rss) == 1:
        return all_rss[0]
    return None


def round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """GetProportion: this ReplicaSet's share of a scaling event, by its max-replicas annotation."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    try:
        annotated = int(annotations(rs)[MAX_REPLICAS_ANNOTATION])
    except (KeyError, ValueError):
        annotated = status_int(d, "replicas")
    if annotated == 0:
        return 0
    return round_half_away(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


def last_revision(rss: list[Obj]) -> int:
    """The second highest revision (what `rollout undo` without --to-revision goes back to)."""
    maxr = second = 0
    for rs in rss:
        v = revision(rs)
        if v >= maxr:
            second, maxr = maxr, v
        elif v > second:
            second = v
    return second


# ------------------------------------------------------------------------ annotations
def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    changed = False
    ann = rs["metadata"].setdefault("annotations", {})
    for k, v in annotations(d).items():
        if k in ANNOTATIONS_TO_SKIP or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations(rs)
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(max_replicas)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy the deployment's annotations, bump the revision and keep
    the revisions this ReplicaSet had before in revision-history."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs["metadata"].setdefault("annotations", {})
    old_revision = ann.get(REVISION_ANNOTATION, "")
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    new_int = int(new_revision)
    if old_int < new_int:
        ann[REVISION_ANNOTATION] = new_revision
        changed = True
        if old_revision:
            history = ann.get(REVISION_HISTORY_ANNOTATION, "")
            olds = [h for h in history.split(",") if h] if history else []
            if not olds:
                ann[REVISION_HISTORY_ANNOTATION] = old_revision
            else:
                total = len(history) + len(old_revision) + 1
                start = 0
                while total > MAX_REV_HISTORY_LENGTH and start < len(olds):
                    total -= len(olds[start]) + 1
                    start += 1
                ann[REVISION_HISTORY_ANNOTATION] = ",".join([*olds[start:], old_revision])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# ------------------------------------------------------------------------ conditions
def now() -> str:
    return metautil.now_rfc3339()


def new_condition(ctype: str, status: str, reason: str, message: str) -> Obj:
    t = now()
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t, "reason": reason,
            "message": message}


def get_condition(status: Obj, ctype: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: a condition with the same status and reason is left alone."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = dict(cond, lastTransitionTime=cur.get("lastTransitionTime"))
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def has_progress_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and pds != MAX_INT32


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (status.get("updatedReplicas") or 0) == want and (status.get("replicas") or 0) == want and \
        (status.get("availableReplicas") or 0) == want and \
        (status.get("observedGeneration") or 0) >= (d["metadata"].get("generation") or 0)


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}
    old_old = (old.get("replicas") or 0) - (old.get("updatedReplicas") or 0)
    new_old = (new.get("replicas") or 0) - (new.get("updatedReplicas") or 0)
    return (new.get("updatedReplicas") or 0) > (old.get("updatedReplicas") or 0) or new_old < old_old or \
        (new.get("readyReplicas") or 0) > (old.get("readyReplicas") or 0) or \
        (new.get("availableReplicas") or 0) > (old.get("availableReplicas") or 0)


def deployment_timed_out(d: Obj, status: Obj, at: float | None = None) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = metautil.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + (d["spec"]["progressDeadlineSeconds"]) < (time.time() if at is None else at)
