"""Upstream's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), as kube-apiserver
creates it at start: every object labelled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
`rbac.authorization.kubernetes.io/autoupdate: "true"`.

admin, edit and view carry only an aggregationRule: their rules come from the system:aggregate-to-*
roles (and any user role with the same labels) through the clusterrole-aggregation controller.
"""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"
Obj = dict[str, Any]

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
         names: list[str] | None = None, urls: list[str] | None = None) -> Obj:
    r: Obj = {"verbs": list(verbs)}
    if urls:
        r["nonResourceURLs"] = list(urls)
        return r
    r["apiGroups"] = list(groups or [""])
    r["resources"] = list(resources or [])
    if names:
        r["resourceNames"] = list(names)
    return r


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {BOOTSTRAP_LABEL[0]: BOOTSTRAP_LABEL[1], **(labels or {})},
            "annotations": {AUTOUPDATE: "true"}}


def cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
                 aggregate_from: str = "") -> Obj:
    role: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": _meta(name, labels)}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{aggregate_from}": "true"}}]}
    role["rules"] = rules
    return role


def cluster_role_binding(name: str, role: str, subjects: list[Obj]) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects}


def group(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "Group", "name": name}


def user(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "User", "name": name}


def _agg(to: str) -> dict[str, str]:
    return {f"rbac.authorization.k8s.io/aggregate-to-{to}": "true"}


def cluster_roles() -> list[Obj]:
    events = rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"])
    return [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]),
        cluster_role("admin", [], aggregate_from="admin"),
        cluster_role("edit", [], labels=_agg("admin"), aggregate_from="edit"),
        cluster_role("view", [], labels=_agg("edit"), aggregate_from="view"),
        cluster_role("system:aggregate-to-admin", [
            rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
            rule(READ_WRITE, [GROUP], ["rolebindings", "roles"]),
        ], labels=_agg("admin")),
        cluster_role("system:aggregate-to-edit", [
            rule(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                              "services/proxy"]),
            rule(["impersonate"], [""], ["serviceaccounts"]),
            rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
            rule(["create"], [""], ["pods/eviction"]),
            rule(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                               "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                               "services/proxy"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
            rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                   "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"]),
            rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
            rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
            rule(WRITE, ["extensions"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                         "ingresses", "networkpolicies", "replicasets", "replicasets/scale",
                                         "replicationcontrollers/scale"]),
            rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
            rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
            rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
        ], labels=_agg("edit")),
        cluster_role("system:aggregate-to-view", [
            rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
                              "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                              "services", "services/status"]),
            rule(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                              "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]),
            rule(READ, [""], ["namespaces"]),
            rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
            rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                                  "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                                  "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"]),
            rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
            rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            rule(READ, ["extensions"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                                        "deployments/status", "ingresses", "ingresses/status", "networkpolicies",
                                        "replicasets", "replicasets/scale", "replicasets/status",
                                        "replicationcontrollers/scale"]),
            rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
        ], labels=_agg("view")),
        cluster_role("system:discovery", [rule(["get"], urls=[
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
            "/version", "/version/"])]),
        cluster_role("system:basic-user", [
            rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
        ]),
        cluster_role("system:public-info-viewer", [rule(["get"], urls=[
            "/healthz", "/livez", "/readyz", "/version", "/version/"])]),
        cluster_role("system:monitoring", [rule(["get"], urls=[
            "/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*"])]),
        cluster_role("system:auth-delegator", [
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        ]),
        cluster_role("system:service-account-issuer-discovery", [rule(["get"], urls=[
            "/.well-known/openid-configuration", "/openid/v1/jwks"])]),
        cluster_role("system:kube-controller-manager", [
            events,
            rule(["create"], ["coordination.k8s.io"], ["leases"]),
            rule(["get", "update"], ["coordination.k8s.io"], ["leases"], names=["kube-controller-manager"]),
            rule(["create"], [""], ["secrets", "serviceaccounts"]),
            rule(["delete"], [""], ["secrets"]),
            rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
            rule(["update"], [""], ["secrets", "serviceaccounts"]),
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            rule(["list", "watch"], ["*"], ["*"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
        ]),
        cluster_role("system:kube-scheduler", [
            events,
            rule(["create"], ["coordination.k8s.io"], ["leases"]),
            rule(["get", "update"], ["coordination.k8s.io"], ["leases"], names=["kube-scheduler"]),
            rule(READ, [""], ["nodes"]),
            rule(["delete", "get", "list", "watch"], [""], ["pods"]),
            rule(["create"], [""], ["bindings", "pods/binding"]),
            rule(["patch", "update"], [""], ["pods/status"]),
            rule(READ, [""], ["replicationcontrollers", "services"]),
            rule(READ, ["apps", "extensions"], ["replicasets"]),
            rule(READ, ["apps"], ["statefulsets"]),
            rule(READ, ["policy"], ["poddisruptionbudgets"]),
            rule(READ, [""], ["persistentvolumeclaims", "persistentvolumes"]),
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            rule(READ, ["storage.k8s.io"], ["csinodes"]),
            rule(READ, [""], ["namespaces"]),
            rule(READ, ["storage.k8s.io"], ["csidrivers"]),
            rule(READ, ["storage.k8s.io"], ["csistoragecapacities"]),
        ]),
        cluster_role("system:node-proxier", [
            rule(["list", "watch"], [""], ["endpoints", "services"]),
            rule(READ, [""], ["nodes"]),
            events,
            rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
        ]),
        cluster_role("system:node", [
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"]),
            rule(READ, [""], ["services"]),
            rule(["create", "get", "list", "watch"], [""], ["nodes"]),
            rule(["patch", "update"], [""], ["nodes/status"]),
            rule(["patch", "update"], [""], ["nodes"]),
            rule(["create", "patch", "update"], [""], ["events"]),
            rule(READ, [""], ["pods"]),
            rule(["create", "delete"], [""], ["pods"]),
            rule(["patch", "update"], [""], ["pods/status"]),
            rule(["create"], [""], ["pods/eviction"]),
            rule(READ, [""], ["configmaps", "secrets"]),
            rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
            rule(["get"], [""], ["endpoints"]),
            rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
            rule(["get", "patch", "update"], [""], ["persistentvolumeclaims/status"]),
            rule(READ, ["node.k8s.io"], ["runtimeclasses"]),
        ]),
    ]


def cluster_role_bindings() -> list[Obj]:
    authenticated, unauthenticated = group("system:authenticated"), group("system:unauthenticated")
    return [
        cluster_role_binding("cluster-admin", "cluster-admin", [group("system:masters")]),
        cluster_role_binding("system:basic-user", "system:basic-user", [authenticated]),
        cluster_role_binding("system:discovery", "system:discovery", [authenticated]),
        cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                             [authenticated, unauthenticated]),
        cluster_role_binding("system:monitoring", "system:monitoring", [group("system:monitoring")]),
        cluster_role_binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                             [group("system:serviceaccounts")]),
        cluster_role_binding("system:kube-controller-manager", "system:kube-controller-manager",
                             [user("system:kube-controller-manager")]),
        cluster_role_binding("system:kube-scheduler", "system:kube-scheduler", [user("system:kube-scheduler")]),
        cluster_role_binding("system:node-proxier", "system:node-proxier", [user("system:kube-proxy")]),
        # upstream leaves system:node without subjects: nodes are authorized by the Node authorizer
        cluster_role_binding("system:node", "system:node", []),
    ]
