"""RBAC escalation prevention, as upstream's pkg/registry/rbac/*/policybased storage.

A user may create or update a Role/ClusterRole only with rules they already hold (unless they may
`escalate` it), and bind a role only if they hold its rules (unless they may `bind` it). system:masters
and the in-process components (no request user) are exempt, as upstream's EscalationAllowed.
"""

from __future__ import annotations

from typing import Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin
from kubelite.apiserver.auth import MASTERS_GROUP, RequestAttributes, UserInfo, current_user
from kubelite.apiserver.authz import rules as rbac_rules
from kubelite.apiserver.authz.rbac import RBACAuthorizer, aggregate

GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"roles": "Role", "clusterroles": "ClusterRole"}
BINDING_KINDS = {"rolebindings", "clusterrolebindings"}
Obj = dict[str, Any]


def _only_gc_fields(new: Obj, old: Obj | None) -> bool:
    """Upstream's IsOnlyMutatingGCFields: ownerReferences and finalizers may change without a check."""
    if old is None:
        return False
    a, b = dict(new), dict(old)
    a["metadata"] = {k: v for k, v in (new.get("metadata") or {}).items()
                     if k not in ("ownerReferences", "finalizers", "resourceVersion", "managedFields")}
    b["metadata"] = {k: v for k, v in (old.get("metadata") or {}).items()
                     if k not in ("ownerReferences", "finalizers", "resourceVersion", "managedFields")}
    return a == b


def _go_quote_groups(groups: tuple[str, ...]) -> str:
    return rbac_rules.go_quote_list(list(groups))


def confirm_no_escalation(authorizer: RBACAuthorizer, user: UserInfo, namespace: str, wanted: list[Obj]) -> str:
    """"" when user holds every wanted rule in namespace, else upstream's message naming what is missing."""
    owner, resolution_errors = authorizer.rules_for(user, namespace)
    ok, missing = rbac_rules.covers(owner, wanted)
    if ok:
        return ""
    described = sorted({rbac_rules.compact_string(r) for r in rbac_rules.compact(missing)})
    msg = (f'user "{user.name}" (groups={_go_quote_groups(user.groups)}) is attempting to grant RBAC permissions '
           "not currently held:\n" + "\n".join(described))
    if resolution_errors:
        msg += f"; resolution errors: [{', '.join(resolution_errors)}]"
    return msg


class RBACEscalationCheck(AdmissionPlugin):
    def __init__(self, authorizer: RBACAuthorizer):
        self.authorizer = authorizer

    def _allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = RequestAttributes(verb=verb, path="", resource_request=True, api_group=GROUP, api_version="v1",
                                  resource=resource, namespace=namespace, name=name)
        return self.authorizer.authorize(user, attrs)[0]

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if res.group != GROUP or (res.plural not in ROLE_KINDS and res.plural not in BINDING_KINDS):
            return
        user = current_user.get()
        if user is None or MASTERS_GROUP in user.groups or _only_gc_fields(obj, old):
            return
        m = obj.get("metadata") or {}
        namespace, name = m.get("namespace") or "", m.get("name") or ""
        if res.plural in ROLE_KINDS:
            if self._allowed(user, "escalate", res.plural, namespace, name):
                return
            msg = confirm_no_escalation(self.authorizer, user, namespace, list(obj.get("rules") or []))
        else:
            ref = obj.get("roleRef") or {}
            role_resource = "roles" if ref.get("kind") == "Role" else "clusterroles"
            if self._allowed(user, "bind", role_resource, namespace, ref.get("name") or ""):
                return
            wanted, err = self.authorizer.role_ref_rules(ref, namespace)
            msg = err or confirm_no_escalation(self.authorizer, user, namespace, wanted)
        if msg:
            raise errors.new_forbidden(res.plural, res.group, name, msg)


__all__ = ["RBACEscalationCheck", "confirm_no_escalation", "aggregate"]
