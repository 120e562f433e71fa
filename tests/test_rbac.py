"""RBAC, ServiceAccount tokens, impersonation and access reviews, driven with the real kubectl.

Given the shared cluster, non-admin users authenticate with client certificates signed by the cluster CA
(CN = user, O = groups) or with ServiceAccount tokens, and observe what upstream 1.32 answers.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid

import pytest
import yaml

from tests.conftest import KUBECTL, Cluster

RBAC = "rbac.authorization.k8s.io"


def _kubeconfig(cluster: Cluster, name: str, user: dict) -> str:
    ca = base64.b64encode(open(os.path.join(cluster.data_dir, "tls", "ca.crt"), "rb").read()).decode()
    path = os.path.join(cluster.data_dir, f"kc-{name}-{uuid.uuid4().hex[:6]}")
    with open(path, "w") as f:
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": cluster.url, "certificate-authority-data": ca}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        }, f)
    return path


def user_kubeconfig(cluster: Cluster, name: str, groups: tuple[str, ...] = ()) -> str:
    """A kubeconfig for user `name` in `groups` with a client certificate from the cluster CA."""
    from kubelite.apiserver.pki import PKI, issue_client_cert

    cert, key = issue_client_cert(PKI(os.path.join(cluster.data_dir, "tls")), name, groups)
    return _kubeconfig(cluster, name, {"client-certificate-data": base64.b64encode(cert).decode(),
                                       "client-key-data": base64.b64encode(key).decode()})


def token_kubeconfig(cluster: Cluster, token: str) -> str:
    return _kubeconfig(cluster, "token", {"token": token})


def kubectl_as(cluster: Cluster, kubeconfig: str, *args: str, input: str | None = None):
    import subprocess

    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "--cache-dir",
                           os.path.join(cluster.data_dir, "kubectl-cache"), *args],
                          input=input, capture_output=True, text=True, timeout=60)


def eventually(fn, timeout: float = 10.0, interval: float = 0.1):
    """Retry fn until it returns a truthy value (RBAC caches and controllers are watch-fed)."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def jane(cluster: Cluster) -> str:
    return user_kubeconfig(cluster, "jane")


# ---- forbidden wording ------------------------------------------------------------------------------

def test_forbidden_messages_are_worded_as_upstream(cluster, ns, jane):
    r = kubectl_as(cluster, jane, "get", "pods", "-n", ns)
    assert r.returncode == 1
    assert r.stderr.strip() == (f'Error from server (Forbidden): pods is forbidden: User "jane" cannot list '
                                f'resource "pods" in API group "" in the namespace "{ns}"')

    r = kubectl_as(cluster, jane, "get", "deployments.apps", "web", "-n", ns)
    assert r.stderr.strip() == ('Error from server (Forbidden): deployments.apps "web" is forbidden: User "jane" '
                                f'cannot get resource "deployments" in API group "apps" in the namespace "{ns}"')

    r = kubectl_as(cluster, jane, "get", "nodes")
    assert r.stderr.strip() == ('Error from server (Forbidden): nodes is forbidden: User "jane" cannot list '
                                'resource "nodes" in API group "" at the cluster scope')

    # the Status body: 403, reason Forbidden, details naming kind (and group)
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=jane)
    with pytest.raises(client.ApiException) as e:
        client.AppsV1Api(api).list_namespaced_deployment(ns)
    assert e.value.status == 403
    body = json.loads(e.value.body)
    assert body["reason"] == "Forbidden" and body["code"] == 403
    assert body["details"] == {"group": "apps", "kind": "deployments"}

    # a path outside system:discovery
    r = kubectl_as(cluster, jane, "get", "--raw", "/metrics")
    assert 'forbidden: User "jane" cannot get path "/metrics"' in r.stderr

    # discovery, whoami and the version stay open to every authenticated user
    assert kubectl_as(cluster, jane, "api-resources").returncode == 0
    r = kubectl_as(cluster, jane, "auth", "whoami", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"]["userInfo"] == {"username": "jane", "groups": ["system:authenticated"]}


# ---- roles and bindings -----------------------------------------------------------------------------

def test_role_and_rolebinding_grant_access_in_their_namespace(cluster, ns, jane):
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods", "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-reads", "--role=pod-reader", "--user=jane", "-n", ns)
    r = eventually(lambda: (x := kubectl_as(cluster, jane, "get", "pods", "-n", ns)).returncode == 0 and x)
    assert r and r.stderr.strip() == f"No resources found in {ns} namespace."
    # only there, and only reading
    r = kubectl_as(cluster, jane, "get", "pods", "-n", "default")
    assert 'cannot list resource "pods" in API group "" in the namespace "default"' in r.stderr
    r = kubectl_as(cluster, jane, "delete", "pod", "x", "-n", ns)
    assert 'pods "x" is forbidden: User "jane" cannot delete resource "pods"' in r.stderr

    out = cluster.kubectl("get", "rolebinding", "jane-reads", "-n", ns, "-o", "wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert out[1].split()[:2] == ["jane-reads", "Role/pod-reader"] and out[1].split()[-1] == "jane"

    # resourceNames: one ConfigMap only
    cluster.kubectl("create", "configmap", "open", "-n", ns)
    cluster.kubectl("create", "configmap", "closed", "-n", ns)
    cluster.kubectl("create", "role", "cm-open", "--verb=get", "--resource=configmaps", "--resource-name=open",
                    "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-cm", "--role=cm-open", "--user=jane", "-n", ns)
    assert eventually(lambda: kubectl_as(cluster, jane, "get", "cm", "open", "-n", ns).returncode == 0)
    r = kubectl_as(cluster, jane, "get", "cm", "closed", "-n", ns)
    assert 'configmaps "closed" is forbidden' in r.stderr

    # a binding to a role that does not exist says so in the reason
    cluster.kubectl("create", "rolebinding", "dangling", "--role=nope", "--user=jane", "-n", ns)
    r = eventually(lambda: "RBAC" in (x := kubectl_as(cluster, jane, "get", "secrets", "-n", ns)).stderr and x)
    assert r and r.stderr.strip().endswith(f': RBAC: role.{RBAC} "nope" not found')


def test_clusterrole_and_clusterrolebinding(cluster, jane):
    name = "ns-reader-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "clusterrole", name, "--verb=get,list", "--resource=namespaces,nodes")
    cluster.kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}", "--user=jane")
    try:
        assert eventually(lambda: kubectl_as(cluster, jane, "get", "ns", "default").returncode == 0)
        assert kubectl_as(cluster, jane, "get", "nodes").returncode == 0
        r = kubectl_as(cluster, jane, "delete", "ns", "default", "--dry-run=server")
        assert 'namespaces "default" is forbidden: User "jane" cannot delete resource "namespaces"' in r.stderr
    finally:
        cluster.kubectl("delete", "clusterrolebinding", name)
        cluster.kubectl("delete", "clusterrole", name)
    assert eventually(lambda: kubectl_as(cluster, jane, "get", "ns", "default").returncode == 1)


def test_bootstrap_policy_objects(cluster):
    crb = json.loads(cluster.kubectl("get", "clusterrolebinding", "system:public-info-viewer", "-o", "json").stdout)
    assert crb["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert crb["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    assert crb["subjects"] == [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"},
                               {"apiGroup": RBAC, "kind": "Group", "name": "system:unauthenticated"}]
    admin = json.loads(cluster.kubectl("get", "clusterrole", "cluster-admin", "-o", "json").stdout)
    assert admin["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                              {"nonResourceURLs": ["*"], "verbs": ["*"]}]
    names = cluster.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    for role in ("admin", "edit", "view", "system:discovery", "system:basic-user", "system:public-info-viewer"):
        assert f"clusterrole.{RBAC}/{role}" in names
    view = json.loads(cluster.kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    assert view["aggregationRule"] == {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}
    # filled by the aggregation controller from system:aggregate-to-view
    assert eventually(lambda: any("pods" in r.get("resources", []) for r in json.loads(
        cluster.kubectl("get", "clusterrole", "view", "-o", "json").stdout).get("rules") or []))


def test_clusterrole_aggregation_into_view_and_edit(cluster, ns, jane):
    name = "widgets-view-" + uuid.uuid4().hex[:6]
    widget_rule = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}
    # as a CRD author ships it (kubectl create clusterrole checks the resource exists: a manifest does not)
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "rules": [widget_rule],
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}}))

    def rules_of(role: str) -> list:
        return json.loads(cluster.kubectl("get", "clusterrole", role, "-o", "json").stdout).get("rules") or []

    try:
        # view aggregates it, edit aggregates view, admin aggregates edit
        for role in ("view", "edit", "admin"):
            assert eventually(lambda role=role: widget_rule in rules_of(role)), role
        cluster.kubectl("create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", ns)

        def jane_may(verb: str) -> bool:
            # kubectl auth can-i would not know the widgets resource: ask with a SubjectAccessReview
            sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
                "user": "jane", "groups": ["system:authenticated"], "resourceAttributes": {
                    "verb": verb, "group": "example.com", "resource": "widgets", "namespace": ns}}}
            out = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(sar)).stdout
            return json.loads(out)["status"]["allowed"]

        assert eventually(lambda: jane_may("list"))
        assert not jane_may("create")
        assert kubectl_as(cluster, jane, "get", "deployments", "-n", ns).returncode == 0
    finally:
        cluster.kubectl("delete", "clusterrole", name)
    assert eventually(lambda: widget_rule not in rules_of("view"))

    # an aggregated role of one's own (kubectl create clusterrole --aggregation-rule)
    agg = "monitoring-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "clusterrole", agg, f"--aggregation-rule=example.com/aggregate-to-{agg}=true")
    part = agg + "-part"
    cluster.kubectl("create", "clusterrole", part, "--verb=get", "--resource=endpoints")
    cluster.kubectl("label", "clusterrole", part, f"example.com/aggregate-to-{agg}=true")
    try:
        assert eventually(lambda: rules_of(agg) == [{"apiGroups": [""], "resources": ["endpoints"],
                                                     "verbs": ["get"]}])
    finally:
        cluster.kubectl("delete", "clusterrole", agg, part)


# ---- escalation prevention ------------------------------------------------------------------------

def test_users_cannot_grant_permissions_they_do_not_hold(cluster, ns, jane):
    cluster.kubectl("create", "role", "role-maker", "--verb=create,get,list,update", "--resource=roles,rolebindings",
                    "-n", ns)
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-rm", "--role=role-maker", "--user=jane", "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-pods", "--role=pod-reader", "--user=jane", "-n", ns)
    assert eventually(lambda: kubectl_as(cluster, jane, "get", "pods", "-n", ns).returncode == 0)
    assert eventually(lambda: kubectl_as(cluster, jane, "get", "roles", "-n", ns).returncode == 0)

    r = kubectl_as(cluster, jane, "create", "role", "secret-reader", "--verb=get,list", "--resource=secrets", "-n", ns)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f'Error from server (Forbidden): roles.{RBAC} "secret-reader" is forbidden: user "jane" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}')
    # what she holds she may hand on
    r = kubectl_as(cluster, jane, "create", "role", "pods-again", "--verb=get", "--resource=pods", "-n", ns)
    assert r.returncode == 0, r.stderr
    r = kubectl_as(cluster, jane, "create", "rolebinding", "bob-pods", "--role=pod-reader", "--user=bob", "-n", ns)
    assert r.returncode == 0, r.stderr
    # but not a role beyond her rights
    r = kubectl_as(cluster, jane, "create", "rolebinding", "jane-admin", "--clusterrole=admin", "--user=jane",
                   "-n", ns)
    assert r.returncode == 1
    assert (f'error: failed to create rolebinding: rolebindings.{RBAC} "jane-admin" is forbidden: user "jane" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:') \
        in r.stderr

    # `bind` on that role, or `escalate` on roles, lifts the restriction
    cluster.kubectl("create", "role", "binder", "--verb=bind", "--resource=clusterroles", "--resource-name=admin",
                    "-n", ns)
    cluster.kubectl("create", "role", "escalator", "--verb=escalate", "--resource=roles", "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-binder", "--role=binder", "--user=jane", "-n", ns)
    cluster.kubectl("create", "rolebinding", "jane-escalator", "--role=escalator", "--user=jane", "-n", ns)
    assert eventually(lambda: kubectl_as(cluster, jane, "create", "rolebinding", "jane-admin", "--clusterrole=admin",
                                         "--user=jane", "-n", ns).returncode == 0)
    r = kubectl_as(cluster, jane, "create", "role", "secret-reader", "--verb=get", "--resource=secrets", "-n", ns)
    assert r.returncode == 0, r.stderr


# ---- ServiceAccount tokens ------------------------------------------------------------------------

def test_create_token_and_use_it(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "robot", "-n", ns)
    token = cluster.kubectl("create", "token", "robot", "-n", ns, "--duration=15m").stdout.strip()
    claims = jwt_claims(token)
    sa_uid = json.loads(cluster.kubectl("get", "sa", "robot", "-n", ns, "-o", "json").stdout)["metadata"]["uid"]
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["sub"] == f"system:serviceaccount:{ns}:robot"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["kubernetes.io"] == {"namespace": ns, "serviceaccount": {"name": "robot", "uid": sa_uid}}

    kc = token_kubeconfig(cluster, token)
    r = kubectl_as(cluster, kc, "auth", "whoami", "-o", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:robot" and info["uid"] == sa_uid
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/credential-id"] == [f"JTI={claims['jti']}"]
    # --token on the command line works the same
    r = kubectl_as(cluster, token_kubeconfig(cluster, "unused"), "--token", token, "get", "pods", "-n", ns)
    assert r.stderr.strip() == (f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:{ns}:'
                                f'robot" cannot list resource "pods" in API group "" in the namespace "{ns}"')
    cluster.kubectl("create", "rolebinding", "robot-view", "--clusterrole=view", f"--serviceaccount={ns}:robot",
                    "-n", ns)
    assert eventually(lambda: kubectl_as(cluster, kc, "get", "pods", "-n", ns).returncode == 0)

    # audiences and minimum duration as upstream
    aud = cluster.kubectl("create", "token", "robot", "-n", ns, "--audience=vault").stdout.strip()
    assert jwt_claims(aud)["aud"] == ["vault"]
    assert kubectl_as(cluster, token_kubeconfig(cluster, aud), "get", "pods", "-n", ns).returncode == 1
    r = cluster.kubectl("create", "token", "robot", "-n", ns, "--duration=5m", check=False)
    assert r.returncode == 1 and "spec.expirationSeconds: Invalid value: 300: may not specify a duration less " \
                                 "than 10 minutes" in r.stderr
    r = cluster.kubectl("create", "token", "ghost", "-n", ns, check=False)
    assert r.returncode == 1 and 'serviceaccounts "ghost" not found' in r.stderr

    # deleting the ServiceAccount revokes its tokens
    cluster.kubectl("delete", "sa", "robot", "-n", ns)
    r = eventually(lambda: (x := kubectl_as(cluster, kc, "get", "pods", "-n", ns)).returncode == 1 and
                   "Unauthorized" in x.stderr and x)
    assert r and "error: You must be logged in to the server (Unauthorized)" in r.stderr


def test_pod_bound_token_dies_with_its_pod(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "app", "-n", ns)
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder"},
        "spec": {"serviceAccountName": "app", "nodeName": "nowhere",
                 "containers": [{"name": "c", "image": "localhost/none:0"}]}}))
    token = cluster.kubectl("create", "token", "app", "-n", ns, "--bound-object-kind=Pod",
                            "--bound-object-name=holder").stdout.strip()
    pod_uid = json.loads(cluster.kubectl("get", "pod", "holder", "-n", ns, "-o", "json").stdout)["metadata"]["uid"]
    assert jwt_claims(token)["kubernetes.io"]["pod"] == {"name": "holder", "uid": pod_uid}
    kc = token_kubeconfig(cluster, token)
    info = json.loads(kubectl_as(cluster, kc, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert info["extra"]["authentication.kubernetes.io/pod-name"] == ["holder"]
    assert info["extra"]["authentication.kubernetes.io/pod-uid"] == [pod_uid]
    cluster.kubectl("delete", "pod", "holder", "-n", ns, "--grace-period=0", "--force")
    assert eventually(lambda: "Unauthorized" in kubectl_as(cluster, kc, "auth", "whoami").stderr)


def test_legacy_token_secret_is_filled_and_revoked(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "old", "-n", ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "old-token", "annotations": {"kubernetes.io/service-account.name": "old"}}}))

    def data() -> dict:
        return json.loads(cluster.kubectl("get", "secret", "old-token", "-n", ns, "-o", "json").stdout).get("data") or {}

    assert eventually(lambda: "token" in data())
    d = data()
    assert base64.b64decode(d["namespace"]).decode() == ns
    ca = open(os.path.join(cluster.data_dir, "tls", "ca.crt")).read()
    assert base64.b64decode(d["ca.crt"]).decode() == ca
    token = base64.b64decode(d["token"]).decode()
    assert jwt_claims(token)["iss"] == "kubernetes/serviceaccount"
    kc = token_kubeconfig(cluster, token)
    info = json.loads(kubectl_as(cluster, kc, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:old"

    cluster.kubectl("delete", "sa", "old", "-n", ns)
    assert eventually(lambda: cluster.kubectl("get", "secret", "old-token", "-n", ns, check=False).returncode == 1)
    assert "Unauthorized" in kubectl_as(cluster, kc, "auth", "whoami").stderr


def test_token_review(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "checked", "-n", ns)
    token = cluster.kubectl("create", "token", "checked", "-n", ns).stdout.strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    out = json.loads(cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout)
    assert out["status"]["authenticated"] is True
    assert out["status"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert out["status"]["user"]["username"] == f"system:serviceaccount:{ns}:checked"
    assert out["status"]["user"]["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                               "system:authenticated"]

    review["spec"]["audiences"] = ["somewhere-else"]
    out = json.loads(cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout)
    assert "authenticated" not in out["status"]
    assert "token audiences" in out["status"]["error"] and "is invalid for the target audiences" in \
        out["status"]["error"]

    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "not-a-token"}}
    out = json.loads(cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout)
    assert out["status"] == {"user": {}, "error": "invalid bearer token"}


# ---- kubectl auth can-i, impersonation, access reviews ------------------------------------------------

def test_auth_can_i(cluster, ns, jane):
    r = cluster.kubectl("auth", "can-i", "delete", "nodes")
    assert (r.returncode, r.stdout.strip()) == (0, "yes")
    r = kubectl_as(cluster, jane, "auth", "can-i", "list", "pods", "-n", ns)
    assert (r.returncode, r.stdout.strip()) == (1, "no")
    cluster.kubectl("create", "serviceaccount", "x", "-n", ns)
    sa = f"system:serviceaccount:{ns}:x"
    r = cluster.kubectl("auth", "can-i", "list", "pods", f"--as={sa}", "-n", ns, check=False)
    assert (r.returncode, r.stdout.strip()) == (1, "no")
    cluster.kubectl("create", "rolebinding", "x-edit", "--clusterrole=edit", f"--serviceaccount={ns}:x", "-n", ns)
    assert eventually(lambda: cluster.kubectl("auth", "can-i", "create", "deployments", f"--as={sa}", "-n", ns,
                                              check=False).stdout.strip() == "yes")
    r = cluster.kubectl("auth", "can-i", "create", "roles", f"--as={sa}", "-n", ns, check=False)
    assert (r.returncode, r.stdout.strip()) == (1, "no")
    r = cluster.kubectl("auth", "can-i", "get", "pods", "--subresource=log", f"--as={sa}", "-n", ns, check=False)
    assert r.stdout.strip() == "yes"
    r = cluster.kubectl("auth", "can-i", "get", "/api", f"--as={sa}", check=False)
    assert r.stdout.strip() == "yes"
    r = cluster.kubectl("auth", "can-i", "get", "/metrics", f"--as={sa}", check=False)
    assert (r.returncode, r.stdout.strip()) == (1, "no")

    lines = cluster.kubectl("auth", "can-i", "--list", f"--as={sa}", "-n", ns).stdout.splitlines()
    assert lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert any(line.split()[0] == "deployments.apps" and "create" in line for line in lines[1:])
    assert any(line.split()[0] == "selfsubjectaccessreviews.authorization.k8s.io" for line in lines[1:])
    assert any("[/api]" in line for line in lines[1:])
    admin = cluster.kubectl("auth", "can-i", "--list", "-n", ns).stdout.splitlines()
    assert admin[1].split() == ["*.*", "[]", "[]", "[*]"]


def test_impersonation(cluster, ns, jane):
    devs = f"devs-{ns}"  # a group no other test binds
    r = cluster.kubectl("--as=jane", f"--as-group={devs}", "get", "pods", "-n", ns, check=False)
    assert r.stderr.strip() == (f'Error from server (Forbidden): pods is forbidden: User "jane" cannot list '
                                f'resource "pods" in API group "" in the namespace "{ns}"')
    cluster.kubectl("create", "rolebinding", "devs-view", "--clusterrole=view", f"--group={devs}", "-n", ns)
    assert eventually(lambda: cluster.kubectl("--as=jane", f"--as-group={devs}", "get", "pods", "-n", ns,
                                              check=False).returncode == 0)
    who = json.loads(cluster.kubectl("--as=jane", f"--as-group={devs}", "auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"] == {"username": "jane", "groups": [devs, "system:authenticated"]}

    # impersonating needs the impersonate verb
    r = kubectl_as(cluster, jane, "--as=bob", "get", "pods", "-n", ns)
    assert r.stderr.strip() == ('Error from server (Forbidden): users "bob" is forbidden: User "jane" cannot '
                                'impersonate resource "users" in API group "" at the cluster scope')
    name = "impersonate-bob-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "clusterrole", name, "--verb=impersonate", "--resource=users", "--resource-name=bob")
    cluster.kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}", "--user=jane")
    try:
        r = eventually(lambda: "impersonate" not in (x := kubectl_as(cluster, jane, "--as=bob", "get", "pods",
                                                                    "-n", ns)).stderr and x)
        assert r and 'User "bob" cannot list resource "pods"' in r.stderr
        r = kubectl_as(cluster, jane, "--as=bob", f"--as-group={devs}", "get", "pods", "-n", ns)
        assert r.stderr.strip() == (f'Error from server (Forbidden): groups "{devs}" is forbidden: User "jane" '
                                    'cannot impersonate resource "groups" in API group "" at the cluster scope')
        r = kubectl_as(cluster, jane, f"--as=system:serviceaccount:{ns}:default", "get", "pods", "-n", ns)
        assert r.stderr.strip() == (f'Error from server (Forbidden): serviceaccounts "default" is forbidden: User '
                                    f'"jane" cannot impersonate resource "serviceaccounts" in API group "" in the '
                                    f'namespace "{ns}"')
    finally:
        cluster.kubectl("delete", "clusterrolebinding", name)
        cluster.kubectl("delete", "clusterrole", name)


@pytest.mark.conformance("SubjectReview, API Operations")
def test_subject_access_reviews_match_impersonated_calls(cluster, ns):
    from kubernetes import client

    cluster.kubectl("create", "serviceaccount", "reviewed", "-n", ns)
    username = f"system:serviceaccount:{ns}:reviewed"
    api = cluster.api_client()
    authz = client.AuthorizationV1Api(api)

    def sar_allowed() -> bool:
        sar = authz.create_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": username, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"],
                     "resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": ns}}})
        return sar.status.allowed

    def lsar_allowed() -> bool:
        lsar = authz.create_namespaced_local_subject_access_review(ns, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": ns},
            "spec": {"user": username, "resourceAttributes": {"verb": "list", "resource": "configmaps",
                                                              "namespace": ns}}})
        return lsar.status.allowed

    def impersonated_call_allowed() -> bool:
        api.default_headers["Impersonate-User"] = username
        try:
            client.CoreV1Api(api).list_namespaced_config_map(ns)
            return True
        except client.ApiException as e:
            assert e.status == 403
            return False
        finally:
            del api.default_headers["Impersonate-User"]

    assert (sar_allowed(), lsar_allowed(), impersonated_call_allowed()) == (False, False, False)
    cluster.kubectl("create", "rolebinding", "reviewed-view", "--clusterrole=view",
                    f"--serviceaccount={ns}:reviewed", "-n", ns)
    assert eventually(impersonated_call_allowed)
    assert sar_allowed() and lsar_allowed()

    sar = authz.create_subject_access_review({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": username, "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": ns}}})
    assert sar.status.allowed is True
    assert sar.status.reason == (f'RBAC: allowed by RoleBinding "reviewed-view/{ns}" of ClusterRole "view" to '
                                 f'ServiceAccount "reviewed/{ns}"')
    with pytest.raises(client.ApiException) as e:
        authz.create_subject_access_review({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                            "spec": {"resourceAttributes": {"verb": "get"}}})
    assert e.value.status == 422
    assert "spec.user: Invalid value: \"\": at least one of user or group must be specified" in \
        json.loads(e.value.body)["message"]


@pytest.mark.conformance("OIDC Discovery (ServiceAccountIssuerDiscovery)")
def test_service_account_issuer_discovery_verifies_tokens(cluster, ns):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    cluster.kubectl("create", "serviceaccount", "oidc", "-n", ns)
    token = cluster.kubectl("create", "token", "oidc", "-n", ns).stdout.strip()
    kc = token_kubeconfig(cluster, token)
    r = kubectl_as(cluster, kc, "get", "--raw", "/.well-known/openid-configuration")
    assert r.returncode == 0, r.stderr
    config = json.loads(r.stdout)
    assert config["issuer"] == "https://kubernetes.default.svc.cluster.local" == jwt_claims(token)["iss"]
    assert config["jwks_uri"] == f"{cluster.url}/openid/v1/jwks"
    assert config["response_types_supported"] == ["id_token"] and config["subject_types_supported"] == ["public"]
    keys = json.loads(kubectl_as(cluster, kc, "get", "--raw", "/openid/v1/jwks").stdout)["keys"]

    def unb64(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    header = json.loads(unb64(token.split(".")[0]))
    key = next(k for k in keys if k["kid"] == header["kid"])
    assert header["alg"] == key["alg"] and key["alg"] in config["id_token_signing_alg_values_supported"]
    public = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64(key["x"]), "big"), int.from_bytes(unb64(key["y"]), "big"),
                                           ec.SECP256R1()).public_key()
    head, payload, sig = token.split(".")
    raw = unb64(sig)
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                  f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    # other users are not let in (upstream binds the role to system:serviceaccounts only)
    r = kubectl_as(cluster, user_kubeconfig(cluster, "jane"), "get", "--raw", "/openid/v1/jwks")
    assert 'forbidden: User "jane" cannot get path "/openid/v1/jwks"' in r.stderr
