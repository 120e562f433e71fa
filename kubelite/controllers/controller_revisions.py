"""ControllerRevisions: the template history DaemonSets and StatefulSets keep (upstream pkg/controller/history).

A revision is an immutable snapshot of the parent's pod template stored as a strategic merge patch
(`{"spec": {"template": {..., "$patch": "replace"}}}`), named `<parent>-<hash>`, numbered by
`revision`, owned by its parent through a controller reference. `kubectl rollout history/undo`
reads and applies these objects, so their shape matters more than the hash algorithm.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.owners import controller_ref

Obj = dict[str, Any]

CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
DEFAULT_REVISION_HISTORY_LIMIT = 10
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_PREFIX = 223  # 253 - the hash and its dash


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: each byte onto an alphabet without vowels or look-alikes."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in s.encode())


def fnv32(data: bytes) -> int:
    """hash/fnv New32 (FNV-1, multiply then xor), which HashControllerRevision uses."""
    h = 0x811C9DC5
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def fnv32a(data: bytes) -> int:
    """hash/fnv New32a, which controller.ComputeHash (the DaemonSet template hash) uses."""
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _stable(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def compute_template_hash(template: Obj, collision_count: int | None) -> str:
    """controller.ComputeHash: the DaemonSet's `controller-revision-hash` for a pod template."""
    data = _stable(template)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def hash_controller_revision(data: Any, probe: int | None) -> str:
    """history.HashControllerRevision: hash of the revision's data plus the collision probe."""
    raw = _stable(data)
    if probe:
        raw += str(probe).encode()
    return safe_encode(str(fnv32(raw)))


def controller_revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def template_patch(parent: Obj) -> Obj:
    """getPatch: the pod template as a strategic merge patch that replaces the parent's template."""
    template = metautil.deep_copy(((parent.get("spec") or {}).get("template")) or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_number(cr: Obj) -> int:
    return int(cr.get("revision") or 0)


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    """history.SortControllerRevisions: by revision, then creation time, then name."""
    return sorted(revisions, key=lambda r: (revision_number(r), (r.get("metadata") or {}).get("creationTimestamp", ""),
                                            (r.get("metadata") or {}).get("name", "")))


def next_revision(revisions: list[Obj]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """history.EqualRevision: same hash label and same data."""
    if a is None or b is None:
        return a is b
    la = ((a.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    lb = ((b.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    if la != lb:
        return False
    return _stable(a.get("data")) == _stable(b.get("data"))


def find_equal_revisions(revisions: list[Obj], needle: Obj) -> list[Obj]:
    return [r for r in revisions if equal_revision(r, needle)]


def owned_revisions(store: Any, parent: Obj) -> list[Obj]:
    """Revisions in the informer cache whose controller reference is `parent` (by uid)."""
    meta = parent.get("metadata") or {}
    uid = meta.get("uid")
    out = []
    for cr in store.list(meta.get("namespace")):
        ref = controller_ref(cr)
        if ref is not None and ref.get("uid") == uid:
            out.append(cr)
    return out


def new_controller_revision(parent: Obj, kind: str, api_version: str, template_labels: dict | None, data: Obj,
                            revision: int, collision_count: int | None, hash_label_value: str | None = None,
                            annotations: dict | None = None) -> Obj:
    """history.NewControllerRevision: labels of the template plus the hash label, owned by `parent`."""
    pm = parent["metadata"]
    labels = dict(template_labels or {})
    cr: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "namespace": pm["namespace"],
            "labels": labels,
            "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": pm["name"], "uid": pm["uid"],
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "data": data,
        "revision": revision,
    }
    if annotations:
        cr["metadata"]["annotations"] = dict(annotations)
    h = hash_controller_revision(data, collision_count)
    labels[CONTROLLER_REVISION_HASH_LABEL] = hash_label_value or h
    cr["metadata"]["name"] = controller_revision_name(pm["name"], h)
    return cr


async def create_controller_revision(revisions_client: Any, parent: Obj, revision: Obj,
                                     collision_count: int) -> tuple[Obj, int]:
    """realHistory.CreateControllerRevision: create under `<parent>-<hash>` with the hash as label; on a
    name clash with different data bump the collision count and probe the next hash.
    Returns (revision, collisionCount)."""
    while True:
        cr = metautil.deep_copy(revision)
        h = hash_controller_revision(cr.get("data"), collision_count)
        cr["metadata"]["name"] = controller_revision_name(parent["metadata"]["name"], h)
        cr["metadata"].setdefault("labels", {})[CONTROLLER_REVISION_HASH_LABEL] = h
        try:
            created = await revisions_client.create(cr, namespace=parent["metadata"]["namespace"])
            return created, collision_count
        except StatusError as e:
            if e.code != 409 or e.reason != "AlreadyExists":
                raise
            existing = await revisions_client.get(cr["metadata"]["name"], namespace=parent["metadata"]["namespace"])
            if equal_revision(existing, cr):
                return existing, collision_count
            collision_count += 1


async def truncate_history(revisions_client: Any, old_revisions: list[Obj], live_hashes: set[str],
                           limit: int | None) -> None:
    """Delete the oldest revisions beyond revisionHistoryLimit that no live pod still uses."""
    limit = DEFAULT_REVISION_HISTORY_LIMIT if limit is None else int(limit)
    candidates = [r for r in sort_revisions(old_revisions)
                  if ((r.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) not in live_hashes
                  and r["metadata"]["name"] not in live_hashes]
    excess = len(candidates) - limit
    for cr in candidates[:max(excess, 0)]:
        try:
            await revisions_client.delete(cr["metadata"]["name"], namespace=cr["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise
