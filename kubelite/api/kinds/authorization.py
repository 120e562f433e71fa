"""authorization.k8s.io/v1 access reviews (`kubectl auth can-i`), answered by the server's authorizer.

SubjectAccessReview asks about any user, LocalSubjectAccessReview about any user in one namespace,
SelfSubjectAccessReview about the caller, SelfSubjectRulesReview lists the caller's rules in a namespace
(`kubectl auth can-i --list`). `register` serves them with a fallback authorizer (system:masters only); the
control plane calls `bind` with the RBAC authorizer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.api import errors, schema
from kubelite.api.registry import Registry, Resource

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"


class _MastersOnly:
    def authorize(self, user: Any, attrs: Any) -> tuple[bool, str]:
        return "system:masters" in getattr(user, "groups", ()), ""

    def rules_for(self, user: Any, namespace: str) -> tuple[list[Obj], list[str]]:
        if "system:masters" in getattr(user, "groups", ()):
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                    {"verbs": ["*"], "nonResourceURLs": ["*"]}], []
        return [], []


def _attributes(spec: Obj) -> Any:
    from kubelite.apiserver.auth import RequestAttributes

    ra = spec.get("resourceAttributes")
    if ra is not None:
        return RequestAttributes(verb=ra.get("verb") or "", path="", resource_request=True,
                                 api_group=ra.get("group") or "", api_version=ra.get("version") or "",
                                 resource=ra.get("resource") or "", subresource=ra.get("subresource") or "",
                                 namespace=ra.get("namespace") or "", name=ra.get("name") or "")
    nra = spec.get("nonResourceAttributes") or {}
    return RequestAttributes(verb=nra.get("verb") or "", path=nra.get("path") or "")


def _attribute_errors(spec: Obj) -> list[errors.FieldError]:
    has_ra, has_nra = spec.get("resourceAttributes") is not None, spec.get("nonResourceAttributes") is not None
    if has_ra and has_nra:
        return [errors.invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                               "cannot be specified in combination with resourceAttributes")]
    if not has_ra and not has_nra:
        return [errors.invalid("spec.resourceAttributes", None,
                               "exactly one of nonResourceAttributes or resourceAttributes must be specified")]
    return []


def _response(kind: str, obj: Obj, spec: Obj, allowed: bool, reason: str) -> Obj:
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    metadata = dict(obj.get("metadata") or {})
    metadata.setdefault("creationTimestamp", None)
    return {"kind": kind, "apiVersion": f"{GROUP}/v1", "metadata": metadata, "spec": spec, "status": status}


def subject_access_review(authorizer: Any, local: bool = False) -> Callable[[Obj, Any], Obj]:
    kind = "LocalSubjectAccessReview" if local else "SubjectAccessReview"

    def review(obj: Obj, _caller: Any) -> Obj:
        from kubelite.apiserver.auth import UserInfo

        spec = obj.get("spec") or {}
        fe = _attribute_errors(spec)
        if not spec.get("user") and not spec.get("groups"):
            fe.append(errors.invalid("spec.user", spec.get("user") or "", "at least one of user or group must be "
                                     "specified"))
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        ra = spec.get("resourceAttributes")
        if local:
            if ra is None:
                fe.append(errors.invalid("spec.nonResourceAttributes", spec.get("nonResourceAttributes"),
                                         "disallowed on this kind of request"))
            elif ra.get("namespace") and namespace and ra["namespace"] != namespace:
                fe.append(errors.invalid("spec.resourceAttributes.namespace", ra["namespace"],
                                         "must match metadata.namespace"))
        if fe:
            raise errors.new_invalid(kind, GROUP, "", fe)
        if local and ra is not None and not ra.get("namespace"):
            spec = dict(spec, resourceAttributes=dict(ra, namespace=namespace))
        user = UserInfo(spec.get("user") or "", spec.get("uid") or "", tuple(spec.get("groups") or ()),
                        {k: tuple(v) for k, v in (spec.get("extra") or {}).items()})
        allowed, reason = authorizer.authorize(user, _attributes(spec))
        return _response(kind, obj, spec, allowed, reason)

    return review


def self_subject_access_review(authorizer: Any) -> Callable[[Obj, Any], Obj]:
    def review(obj: Obj, user: Any) -> Obj:
        spec = obj.get("spec") or {}
        fe = _attribute_errors(spec)
        if fe:
            raise errors.new_invalid("SelfSubjectAccessReview", GROUP, "", fe)
        allowed, reason = authorizer.authorize(user, _attributes(spec)) if user is not None else (False, "")
        return _response("SelfSubjectAccessReview", obj, spec, allowed, reason)

    return review


def _rule_infos(rules: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    resource_rules, non_resource_rules = [], []
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(r.get("verbs") or []),
                                       "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            info: Obj = {"verbs": list(r.get("verbs") or []), "apiGroups": list(r.get("apiGroups") or []),
                         "resources": list(r.get("resources") or [])}
            if r.get("resourceNames"):
                info["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(info)
    return resource_rules, non_resource_rules


def self_subject_rules_review(authorizer: Any) -> Callable[[Obj, Any], Obj]:
    def review(obj: Obj, user: Any) -> Obj:
        spec = obj.get("spec") or {}
        namespace = spec.get("namespace") or ""
        if not namespace:
            raise errors.new_bad_request("no namespace on request")
        rules, errs = authorizer.rules_for(user, namespace) if user is not None else ([], [])
        resource_rules, non_resource_rules = _rule_infos(rules)
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                       "incomplete": bool(errs)}
        if errs:
            status["evaluationError"] = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        metadata = dict(obj.get("metadata") or {})
        metadata.setdefault("creationTimestamp", None)
        return {"kind": "SelfSubjectRulesReview", "apiVersion": f"{GROUP}/v1", "metadata": metadata,
                "spec": spec, "status": status}

    return review


def _resources(authorizer: Any) -> list[Resource]:
    out = []
    for kind, plural, namespaced, fn in (
            ("SubjectAccessReview", "subjectaccessreviews", False, subject_access_review(authorizer)),
            ("LocalSubjectAccessReview", "localsubjectaccessreviews", True, subject_access_review(authorizer, True)),
            ("SelfSubjectAccessReview", "selfsubjectaccessreviews", False, self_subject_access_review(authorizer)),
            ("SelfSubjectRulesReview", "selfsubjectrulesreviews", False, self_subject_rules_review(authorizer))):
        out.append(Resource(group=GROUP, version="v1", kind=kind, plural=plural, namespaced=namespaced,
                            verbs=("create",), definition=schema.definition_for_kind(GROUP, "v1", kind) or "",
                            review=fn))
    return out


def register(reg: Registry) -> None:
    for res in _resources(_MastersOnly()):
        reg.register(res)


def bind(reg: Registry, authorizer: Any) -> None:
    """Answer the reviews with `authorizer` (authorize(user, attrs) and rules_for(user, namespace))."""
    for res in _resources(authorizer):
        reg.register(res)
