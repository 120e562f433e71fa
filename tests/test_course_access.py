"""Course, who may do what: given a kubelite with simulated nodes, when a learner creates pods, service
accounts, tokens, Roles and RoleBindings and switches contexts (`kubectl create sa/token/role/
rolebinding`, `kubectl auth can-i`, `--as`, `kubectl config set-context`), then every pod carries
upstream's service account token volume, a missing account is refused with upstream's words, and
RBAC answers as on a 1.32 cluster."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.course_support import Shell, new_shell, start_simulated, table, wait_for

TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SOURCES = [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
]


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_simulated(tmp_path_factory, 2)
    yield c
    c.stop()


@pytest.fixture
def sh(cluster3: Cluster, tmp_path) -> Iterator[Shell]:
    s = new_shell(cluster3, tmp_path, "a")
    yield s
    cluster3.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def token_volumes(pod: dict) -> list[dict]:
    return [v for v in pod["spec"].get("volumes") or [] if v["name"].startswith("kube-api-access-")]


def test_every_pod_mounts_the_service_account_token(sh: Shell):
    """`kubectl describe pod` on any upstream cluster lists the kube-api-access volume and its mount."""
    sh.out("kubectl run web --image nginx")
    pod = sh.json("kubectl get pod web -o json")
    [vol] = token_volumes(pod)
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", vol["name"]), vol
    assert vol["projected"] == {"defaultMode": 420, "sources": TOKEN_SOURCES}, vol
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": vol["name"], "readOnly": True, "mountPath": TOKEN_PATH}]
    d = sh.out("kubectl describe pod web")
    assert "Service Account:  default\n" in d, d
    assert f"    Mounts:\n      {TOKEN_PATH} from {vol['name']} (ro)\n" in d, d
    assert (f"Volumes:\n  {vol['name']}:\n"
            "    Type:                    Projected (a volume that contains injected data from multiple sources)\n"
            "    TokenExpirationSeconds:  3607\n"
            "    ConfigMapName:           kube-root-ca.crt\n"
            "    ConfigMapOptional:       <nil>\n"
            "    DownwardAPI:             true\n") in d, d
    # each pod its own volume name; a Deployment's pods too
    sh.out("kubectl create deployment web --image nginx --replicas 2")
    pods = sh.wait_pods("app=web", 2)
    names = {token_volumes(p)[0]["name"] for p in pods} | {vol["name"]}
    assert len(names) == 3, names
    # the client's own dry run knows nothing of admission; the server's shows what would be stored
    assert "kube-api-access" not in sh.out("kubectl run x --image nginx --dry-run=client -o yaml")
    y = sh.out("kubectl run x --image nginx --dry-run=server -o yaml")
    assert f"    - mountPath: {TOKEN_PATH}\n      name: kube-api-access-" in y, y


@pytest.mark.conformance("Service account tokens auto mount optionally")
def test_automount_opt_out(sh: Shell):
    """Pod's automountServiceAccountToken wins, then the ServiceAccount's, else the token is mounted."""
    sh.out("kubectl create serviceaccount nomount")
    sh.out("kubectl patch serviceaccount nomount -p '{\"automountServiceAccountToken\": false}'")
    sh.out("kubectl create serviceaccount mount")
    sh.out("kubectl patch serviceaccount mount -p '{\"automountServiceAccountToken\": true}'")
    want = {}
    for sa in ("default", "mount", "nomount"):
        for pod_says in (None, True, False):
            name = f"p-{sa}-{str(pod_says).lower()}"
            spec: dict = {"serviceAccountName": sa, "containers": [{"name": "c", "image": "nginx"}]}
            if pod_says is not None:
                spec["automountServiceAccountToken"] = pod_says
            sh.run("kubectl apply -f -", input=json.dumps(
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}))
            want[name] = pod_says if pod_says is not None else sa != "nomount"
    got = {p["metadata"]["name"]: any(m["mountPath"] == TOKEN_PATH
                                      for m in p["spec"]["containers"][0].get("volumeMounts") or [])
           for p in sh.pods()}
    assert got == want
    assert "    Mounts:         <none>\n" in sh.out("kubectl describe pod p-nomount-none")
    assert "Volumes:                      <none>\n" in sh.out("kubectl describe pod p-default-false")
    # a mount of one's own at the token path is kept, and no token volume is added for it
    sh.run("kubectl apply -f -", input="""apiVersion: v1
kind: Pod
metadata:
  name: own
spec:
  containers:
  - name: c
    image: nginx
    volumeMounts:
    - name: mine
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  - name: d
    image: nginx
  volumes:
  - name: mine
    emptyDir: {}
""")
    pod = sh.json("kubectl get pod own -o json")
    assert [m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]] == ["mine"]
    [vol] = token_volumes(pod)
    assert [m["name"] for m in pod["spec"]["containers"][1]["volumeMounts"]] == [vol["name"]]


def test_missing_service_account_is_forbidden(sh: Shell):
    err = sh.fails("kubectl run web --image nginx --overrides '{\"spec\": {\"serviceAccountName\": \"robott\"}}'")
    assert err == (f'Error from server (Forbidden): pods "web" is forbidden: error looking up service account '
                   f'{sh.namespace}/robott: serviceaccount "robott" not found\n'), err
    # a Deployment keeps trying; its ReplicaSet says why (pods named by their generateName)
    sh.out("kubectl create deployment web --image nginx")
    sh.wait_pods("app=web", 1)
    assert sh.out("kubectl set serviceaccount deployment web robott") == \
        "deployment.apps/web serviceaccount updated\n"

    def failed() -> list[dict]:
        return [r for r in table(sh.out("kubectl get events"))[1] if r["REASON"] == "FailedCreate"]
    rows = wait_for(failed, 30, "a FailedCreate event")
    assert rows[0]["TYPE"] == "Warning" and rows[0]["OBJECT"].startswith("replicaset/web-"), rows
    rs = rows[0]["OBJECT"].split("/")[1]
    assert rows[0]["MESSAGE"] == (f'Error creating: pods "{rs}-" is forbidden: error looking up service account '
                                  f'{sh.namespace}/robott: serviceaccount "robott" not found'), rows
    # the old pod keeps serving; creating the account lets the rollout finish
    assert len(sh.pods("app=web")) == 1
    assert sh.out("kubectl create serviceaccount robott") == "serviceaccount/robott created\n"
    assert "successfully rolled out" in sh.wait_deploy("web")
    [pod] = sh.wait_pods("app=web", 1)
    assert pod["spec"]["serviceAccountName"] == "robott"
    assert "Service Account:  robott\n" in sh.out(f"kubectl describe pod {pod['metadata']['name']}")


def test_service_account_token_and_rbac(sh: Shell):
    ns = sh.namespace
    assert sh.out("kubectl create sa robot") == "serviceaccount/robot created\n"
    names, rows = table(sh.out("kubectl get sa"))
    assert names == ["NAME", "SECRETS", "AGE"] and {r["NAME"]: r["SECRETS"] for r in rows} == {
        "default": "0", "robot": "0"}
    token = sh.out("kubectl create token robot").strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == f"system:serviceaccount:{ns}:robot", claims
    assert claims["exp"] - claims["iat"] == 3600, claims
    # the token authenticates as the account, which may do nothing yet (as a user of the kubeconfig of
    # its own: `--token` beside the admin's client certificate would still be the admin, as upstream)
    assert sh.out(f"kubectl config set-credentials robot --token={token}") == 'User "robot" set.\n'
    who = table(sh.out("kubectl auth whoami --user robot"))[1]
    got = {r["ATTRIBUTE"]: r["VALUE"] for r in who}
    assert got["Username"] == f"system:serviceaccount:{ns}:robot", who
    assert got["Groups"] == f"[system:serviceaccounts system:serviceaccounts:{ns} system:authenticated]", who
    assert re.fullmatch(r"\[JTI=[-0-9a-f]{36}\]", got["Extra: authentication.kubernetes.io/credential-id"]), who
    err = sh.fails("kubectl get pods --user robot")
    assert err == (f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:{ns}:robot" '
                   f'cannot list resource "pods" in API group "" in the namespace "{ns}"\n'), err
    as_robot = f"--as=system:serviceaccount:{ns}:robot"
    assert sh.run(f"kubectl auth can-i list pods {as_robot}", check=False).stdout == "no\n"

    assert sh.out("kubectl create role pod-reader --verb=get,list,watch --resource=pods") == \
        "role.rbac.authorization.k8s.io/pod-reader created\n"
    assert sh.out(f"kubectl create rolebinding robot-reads --role=pod-reader --serviceaccount={ns}:robot") == \
        "rolebinding.rbac.authorization.k8s.io/robot-reads created\n"
    d = sh.out("kubectl describe role pod-reader")
    assert ("PolicyRule:\n  Resources  Non-Resource URLs  Resource Names  Verbs\n"
            "  ---------  -----------------  --------------  -----\n"
            "  pods       []                 []              [get list watch]\n") in d, d
    d = sh.out("kubectl describe rolebinding robot-reads")
    assert re.search(r"Role:\n  Kind:  Role\n  Name:  pod-reader\nSubjects:\n  Kind            Name   Namespace\n"
                     rf"  ----            ----   ---------\n  ServiceAccount  robot  {ns}\n", d), d
    row = table(sh.out("kubectl get rolebinding robot-reads -o wide"))[1][0]
    assert (row["ROLE"], row["SERVICEACCOUNTS"]) == ("Role/pod-reader", f"{ns}/robot"), row

    def can(verb_res: str, extra: str = "") -> str:
        return sh.run(f"kubectl auth can-i {verb_res} {as_robot} {extra}", check=False).stdout.strip()
    wait_for(lambda: can("list pods") == "yes", 10, "the binding to reach the authorizer")
    assert (can("watch pods"), can("delete pods"), can("list pods", "-n default"), can("list deployments")) == \
        ("yes", "no", "no", "no")
    r = sh.run("kubectl get pods --user robot")
    assert r.stderr == f"No resources found in {ns} namespace.\n", r
    err = sh.fails("kubectl run web --image nginx " + as_robot)
    assert err == (f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:{ns}:robot" '
                   f'cannot create resource "pods" in API group "" in the namespace "{ns}"\n'), err
    err = sh.fails(f"kubectl get deploy {as_robot}")
    assert f'cannot list resource "deployments" in API group "apps" in the namespace "{ns}"' in err, err


def test_contexts_and_namespaces(sh: Shell):
    """`kubectl config set-context` / `use-context`: the namespace a bare `kubectl get` goes to."""
    other = sh.namespace + "-b"
    assert sh.out(f"kubectl create namespace {other}") == f"namespace/{other} created\n"
    sh.out(f"kubectl -n {other} create configmap only-there --from-literal=a=b")
    out = sh.out(f"kubectl config set-context other --cluster=kubelite --user=kubelite --namespace={other}")
    assert out == 'Context "other" created.\n'
    assert sh.out("kubectl config use-context other") == 'Switched to context "other".\n'
    assert sh.out("kubectl config current-context") == "other\n"
    assert "only-there" in sh.out("kubectl get configmaps")
    names, rows = table(sh.out("kubectl config get-contexts"))
    assert names == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert {r["NAME"]: (r["CURRENT"], r["NAMESPACE"]) for r in rows}["other"] == ("*", other)
    r = sh.run("kubectl get pods")
    assert r.stdout == "" and r.stderr == f"No resources found in {other} namespace.\n"
    sh.out(f"kubectl delete namespace {other} --wait=false")
    err = sh.fails("kubectl create configmap late --from-literal=a=b")
    assert err in (f"error: failed to create configmap: configmaps \"late\" is forbidden: unable to create new "
                   f"content in namespace {other} because it is being terminated\n",
                   f'error: failed to create configmap: namespaces "{other}" not found\n'), err
