"""Owner references as controllers use them (apimachinery's metav1.NewControllerRef / GetControllerOf)."""

from __future__ import annotations


def controller_ref(obj: dict) -> dict | None:
    """The ownerReference with `controller: true`, if any (metav1.GetControllerOf)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: dict, kind: str, api_version: str) -> dict:
    """An ownerReference making `owner` the managing controller, blocking its foreground deletion."""
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: dict, owner: dict) -> bool:
    """metav1.IsControlledBy: the controller reference of `obj` points at `owner`'s uid."""
    ref = controller_ref(obj)
    uid = (owner.get("metadata") or {}).get("uid")
    return ref is not None and bool(uid) and ref.get("uid") == uid
