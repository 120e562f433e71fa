"""Namespace deletion, the default ServiceAccount and the kube-root-ca.crt ConfigMap."""

from __future__ import annotations

import uuid

import pytest
from test_controllers_support import apply, deployment_manifest, get_json, wait_until

CONTENT = """
apiVersion: v1
kind: Pod
metadata:
  name: lonely
spec:
  containers:
  - name: main
    image: nginx:1.25
---
apiVersion: v1
kind: Service
metadata:
  name: svc
spec:
  selector: {app: x}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data: {a: b}
"""


def gone(cluster, *args: str) -> bool:
    r = cluster.kubectl("get", *args, check=False)
    return r.returncode != 0 and "NotFound" in r.stderr


@pytest.fixture
def doomed(cluster):
    name = "doomed-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.conformance("namespace-deletion-removes-pods")
@pytest.mark.conformance("namespace-deletion-removes-services")
def test_namespace_deletion_removes_content_then_namespace(cluster, doomed):
    apply(cluster, doomed, CONTENT)
    apply(cluster, doomed, deployment_manifest("web", 2))
    wait_until(lambda: len(get_json(cluster, "pods", "-n", doomed)["items"]) == 3, what="pods")
    # a finalizer of our own keeps one object, and so the namespace, around
    cluster.kubectl("patch", "configmap", "cfg", "-n", doomed, "--type=merge", "-p",
                    '{"metadata":{"finalizers":["example.com/hold"]}}')
    cluster.kubectl("delete", "namespace", doomed, "--wait=false")

    def terminating_conditions():
        ns = get_json(cluster, "namespace", doomed)
        conds = {c["type"]: c for c in ns["status"].get("conditions") or []}
        return ns["status"]["phase"] == "Terminating" and "NamespaceFinalizersRemaining" in conds and \
            conds["NamespaceFinalizersRemaining"]["status"] == "True" and conds

    conds = wait_until(terminating_conditions, what="Terminating with conditions")
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert "configmaps. has 1 resource instances" in conds["NamespaceContentRemaining"]["message"]
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert get_json(cluster, "pods", "-n", doomed)["items"] == []
    assert get_json(cluster, "services", "-n", doomed)["items"] == []
    assert get_json(cluster, "deploy", "-n", doomed)["items"] == []
    assert get_json(cluster, "namespace", doomed)["spec"]["finalizers"] == ["kubernetes"]

    cluster.kubectl("patch", "configmap", "cfg", "-n", doomed, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: gone(cluster, "namespace", doomed), what="namespace removed")


def test_default_service_account_in_every_namespace(cluster, ns):
    sa = wait_until(lambda: (r := cluster.kubectl("get", "sa", "default", "-n", ns, "-o", "name", check=False))
                    .returncode == 0 and r.stdout.strip())
    assert sa == "serviceaccount/default"
    uid = get_json(cluster, "sa", "default", "-n", ns)["metadata"]["uid"]
    cluster.kubectl("delete", "sa", "default", "-n", ns)
    wait_until(lambda: (r := cluster.kubectl("get", "sa", "default", "-n", ns, "-o", "jsonpath={.metadata.uid}",
                                             check=False)).returncode == 0 and r.stdout not in ("", uid),
               what="default ServiceAccount recreated")


@pytest.mark.conformance("RootCA ConfigMap test")
def test_root_ca_configmap_created_recreated_and_reconciled(cluster, ns):
    def ca():
        r = cluster.kubectl("get", "cm", "kube-root-ca.crt", "-n", ns, "-o", "json", check=False)
        if r.returncode != 0:
            return None
        import json

        return json.loads(r.stdout)

    cm = wait_until(ca, what="kube-root-ca.crt")
    pem = cm["data"]["ca.crt"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem == get_json(cluster, "cm", "kube-root-ca.crt", "-n", "default")["data"]["ca.crt"]
    cluster.kubectl("patch", "cm", "kube-root-ca.crt", "-n", ns, "--type=merge", "-p", '{"data":{"ca.crt":"junk"}}')
    wait_until(lambda: (c := ca()) and c["data"] == {"ca.crt": pem}, what="reconciled")
    cluster.kubectl("delete", "cm", "kube-root-ca.crt", "-n", ns)
    wait_until(lambda: (c := ca()) and c["data"] == {"ca.crt": pem}, what="recreated")
