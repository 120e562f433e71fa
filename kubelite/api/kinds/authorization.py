"""authorization.k8s.io/v1: access reviews (`kubectl auth can-i`), answered by the server's authorizer."""

from __future__ import annotations

from typing import Any

from kubelite.api import schema
from kubelite.api.registry import Registry, Resource

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"


def _allowed(user: Any, attrs: Obj) -> tuple[bool, str]:
    """Until RBAC lands every authenticated user may do everything, as the server's authorizer says."""
    return user is not None, ""


def self_subject_access_review(obj: Obj, user: Any) -> Obj:
    spec = obj.get("spec") or {}
    attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
    allowed, reason = _allowed(user, attrs)
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {"kind": "SelfSubjectAccessReview", "apiVersion": f"{GROUP}/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def self_subject_rules_review(obj: Obj, user: Any) -> Obj:
    spec = obj.get("spec") or {}
    return {"kind": "SelfSubjectRulesReview", "apiVersion": f"{GROUP}/v1", "metadata": {"creationTimestamp": None},
            "spec": spec, "status": {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False}}


def register(reg: Registry) -> None:
    for kind, plural, fn in (("SelfSubjectAccessReview", "selfsubjectaccessreviews", self_subject_access_review),
                             ("SelfSubjectRulesReview", "selfsubjectrulesreviews", self_subject_rules_review)):
        reg.register(Resource(
            group=GROUP, version="v1", kind=kind, plural=plural, namespaced=False, verbs=("create",),
            definition=schema.definition_for_kind(GROUP, "v1", kind) or "", review=fn,
        ))
