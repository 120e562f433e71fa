"""The RBAC authorizer: upstream's plugin/pkg/auth/authorizer/rbac over watch-fed caches.

Roles, ClusterRoles and both binding kinds are held by informers on the in-process client. The binding
caches are indexed by subject (`u:<user>` / `g:<group>`, a ServiceAccount subject as its user name), so a
decision costs one index lookup per user name and group, then one role lookup per matching binding: never
a scan of the store. Members of system:masters are allowed before RBAC is asked, as kube-apiserver's
privileged-group authorizer does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kubelite.apiserver.auth import MASTERS_GROUP, RequestAttributes, UserInfo
from kubelite.apiserver.authz.rules import Rule, rule_allows
from kubelite.apiserver.satoken import make_username
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

GROUP = "rbac.authorization.k8s.io"
NODES_GROUP = "system:nodes"
Obj = dict[str, Any]


def _subject_key(subject: Obj, binding_namespace: str) -> str | None:
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "User":
        return "u:" + name
    if kind == "Group":
        return "g:" + name
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return "u:" + make_username(ns, name) if ns else None
    return None


def _cluster_binding_index(binding: Obj) -> list[str]:
    return [k for s in binding.get("subjects") or [] if (k := _subject_key(s, "")) is not None]


def _role_binding_index(binding: Obj) -> list[str]:
    ns = (binding.get("metadata") or {}).get("namespace") or ""
    return [f"{ns}|{k}" for s in binding.get("subjects") or [] if (k := _subject_key(s, ns)) is not None]


def user_keys(user: UserInfo) -> list[str]:
    return ["u:" + user.name, *("g:" + g for g in user.groups)]


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _applies(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    key = _subject_key(subject, binding_namespace)
    return key is not None and (key == "u:" + user.name or (key.startswith("g:") and key[2:] in user.groups))


def aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message, or `[a, b]`."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


class RBACAuthorizer:
    """authorize(user, attributes) -> (allowed, reason), as upstream's RBACAuthorizer.Authorize."""

    def __init__(self, client: Any):
        self.factory = SharedInformerFactory(client)
        self.roles = self.factory.informer(GROUP, "v1", "roles")
        self.cluster_roles = self.factory.informer(GROUP, "v1", "clusterroles")
        self.role_bindings = self.factory.informer(GROUP, "v1", "rolebindings")
        self.cluster_role_bindings = self.factory.informer(GROUP, "v1", "clusterrolebindings")
        self.role_bindings.store.add_index("subject", _role_binding_index)
        self.cluster_role_bindings.store.add_index("subject", _cluster_binding_index)

    async def start(self, timeout: float = 30) -> None:
        await self.factory.start()
        if not await self.factory.wait_for_sync(timeout):
            log.warning("RBAC caches have not synced after %ss", timeout)

    async def stop(self) -> None:
        await self.factory.stop()

    # ---- lookups ---------------------------------------------------------------------------------

    def role_ref_rules(self, ref: Obj, namespace: str) -> tuple[list[Rule], str]:
        """The rules a roleRef names, or an error worded as upstream's listers (`role.rbac... "x" not found`)."""
        name = ref.get("name") or ""
        if ref.get("kind") == "Role":
            role = self.roles.store.get(namespace, name)
            what = "role"
        elif ref.get("kind") == "ClusterRole":
            role = self.cluster_roles.store.get(None, name)
            what = "clusterrole"
        else:
            return [], f"unsupported role reference kind: {ref.get('kind')!r}"
        if role is None:
            return [], f'{what}.{GROUP} "{name}" not found'
        return list(role.get("rules") or []), ""

    def _bindings(self, user: UserInfo, namespace: str) -> Iterator[tuple[Obj, Obj, str]]:
        """(binding, matching subject, source description) for every binding that applies to user:
        ClusterRoleBindings first, then RoleBindings of namespace, as upstream's VisitRulesFor."""
        seen: set[str] = set()
        keys = user_keys(user)
        for key in keys:
            for b in self.cluster_role_bindings.store.by_index("subject", key):
                name = b["metadata"]["name"]
                if name in seen:
                    continue
                seen.add(name)
                subject = next(s for s in b.get("subjects") or [] if _applies(s, user, ""))
                ref = b.get("roleRef") or {}
                yield b, subject, (f'ClusterRoleBinding "{name}" of {ref.get("kind")} "{ref.get("name")}" to '
                                   f'{_describe_subject(subject, "")}')
        if not namespace:
            return
        seen.clear()
        for key in keys:
            for b in self.role_bindings.store.by_index("subject", f"{namespace}|{key}"):
                name = b["metadata"]["name"]
                if name in seen:
                    continue
                seen.add(name)
                subject = next(s for s in b.get("subjects") or [] if _applies(s, user, namespace))
                ref = b.get("roleRef") or {}
                yield b, subject, (f'RoleBinding "{name}/{namespace}" of {ref.get("kind")} "{ref.get("name")}" to '
                                   f'{_describe_subject(subject, namespace)}')

    # ---- decisions ---------------------------------------------------------------------------------

    def authorize(self, user: UserInfo, attributes: RequestAttributes) -> tuple[bool, str]:
        if MASTERS_GROUP in user.groups:
            return True, ""
        if NODES_GROUP in user.groups:
            # stand-in for upstream's Node authorizer: a kubelet gets the system:node role's rules
            node_rules, _ = self.role_ref_rules({"kind": "ClusterRole", "name": "system:node"}, "")
            if any(rule_allows(attributes, r) for r in node_rules):
                return True, ""
        errors: list[str] = []
        for binding, _subject, source in self._bindings(user, attributes.namespace):
            ns = (binding.get("metadata") or {}).get("namespace") or ""
            rules, err = self.role_ref_rules(binding.get("roleRef") or {}, ns)
            if err:
                errors.append(err)
                continue
            for rule in rules:
                if rule_allows(attributes, rule):
                    return True, f"RBAC: allowed by {source}"
        return False, f"RBAC: {aggregate(errors)}" if errors else ""

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule user holds in namespace ("" = cluster-wide only), and resolution errors (RulesFor)."""
        rules: list[Rule] = []
        errors: list[str] = []
        for binding, _subject, _source in self._bindings(user, namespace):
            ns = (binding.get("metadata") or {}).get("namespace") or ""
            found, err = self.role_ref_rules(binding.get("roleRef") or {}, ns)
            if err:
                errors.append(err)
            rules.extend(found)
        return rules, errors
