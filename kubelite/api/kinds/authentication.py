"""authentication.k8s.io/v1: SelfSubjectReview (`kubectl auth whoami`) and TokenReview, computed per request."""

from __future__ import annotations

from typing import Any

from kubelite.api import schema
from kubelite.api.registry import Registry, Resource

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"


def user_info(user: Any) -> Obj:
    """UserInfo as upstream serializes it (username, uid, groups, extra)."""
    if user is None:
        return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    info: Obj = {"username": user.name, "groups": list(user.groups)}
    if getattr(user, "uid", ""):
        info["uid"] = user.uid
    if getattr(user, "extra", None):
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info


def self_subject_review(obj: Obj, user: Any) -> Obj:
    return {"kind": "SelfSubjectReview", "apiVersion": f"{GROUP}/v1",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": user_info(user)}}


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="SelfSubjectReview", plural="selfsubjectreviews", namespaced=False,
        verbs=("create",), definition=schema.definition_for_kind(GROUP, "v1", "SelfSubjectReview") or "",
        review=self_subject_review,
    ))
