"""Custom objects in namespace deletion and garbage collection: given a kubelite that is already running,
when a user creates a CustomResourceDefinition, then `kubectl delete ns` deletes its custom objects (a
finalizer on one keeps the namespace Terminating, with upstream's conditions), and ownerReferences from
and to custom objects are collected in background, foreground and orphan propagation, without a
restart; a deleted and re-created CRD is followed too, and so are CRDs stored before a restart."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from test_controllers_support import get_json, wait_until

from tests.conftest import Cluster

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: {plural}, singular: {singular}, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""


class Widgets:
    """A CRD of the test's own (unique group and plural: kubectl's discovery cache never confuses them)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        tag = uuid.uuid4().hex[:8]
        self.group, self.plural = f"w{tag}.example.com", f"widgets{tag}"
        self.resource = f"{self.plural}.{self.group}"
        self.api_version = f"{self.group}/v1"

    def create(self) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=CRD.format(plural=self.plural, group=self.group,
                                                                   singular=self.plural[:-1]))
        self.cluster.kubectl("wait", "--for=condition=Established", f"crd/{self.resource}", "--timeout=30s")

    def delete(self) -> None:
        self.cluster.kubectl("delete", "crd", self.resource, "--timeout=60s")

    def make(self, ns: str, name: str, finalizers: list[str] | None = None, owner: dict | None = None) -> dict:
        meta: dict = {"name": name}
        if finalizers:
            meta["finalizers"] = finalizers
        if owner:
            meta["ownerReferences"] = [owner]
        body = {"apiVersion": self.api_version, "kind": "Widget", "metadata": meta, "spec": {"size": 1}}
        return json.loads(self.cluster.kubectl("create", "-n", ns, "-o", "json", "-f", "-",
                                               input=json.dumps(body)).stdout)


def owner_ref(obj: dict, block: bool = False) -> dict:
    ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
           "uid": obj["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def configmap(cluster: Cluster, ns: str, name: str, owner: dict, finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": name, "ownerReferences": [owner]}
    if finalizers:
        meta["finalizers"] = finalizers
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}
    return json.loads(cluster.kubectl("create", "-n", ns, "-o", "json", "-f", "-", input=json.dumps(body)).stdout)


def lookup(cluster: Cluster, ns: str, *what: str) -> dict | None:
    r = cluster.kubectl("get", "-n", ns, *what, "-o", "json", check=False)
    if r.returncode != 0:
        assert "NotFound" in r.stderr, r.stderr
        return None
    return json.loads(r.stdout)


def gone(cluster: Cluster, ns: str, *what: str) -> bool:
    return lookup(cluster, ns, *what) is None


@pytest.fixture
def widgets(cluster: Cluster):
    w = Widgets(cluster)
    w.create()
    yield w
    cluster.kubectl("delete", "crd", w.resource, "--wait=false", check=False)


@pytest.fixture
def doomed(cluster: Cluster):
    name = "doomed-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_namespace_deletion_deletes_custom_objects(cluster: Cluster, widgets: Widgets, doomed: str):
    widgets.make(doomed, "one")
    widgets.make(doomed, "two")
    cluster.kubectl("create", "configmap", "cfg", "-n", doomed, "--from-literal=a=b")
    cluster.kubectl("delete", "namespace", doomed, "--timeout=60s")
    assert gone(cluster, "", "namespace", doomed)
    # the custom objects went with the namespace, not left behind in the store
    left = get_json(cluster, widgets.resource, "--all-namespaces")["items"]
    assert [o["metadata"]["name"] for o in left if o["metadata"]["namespace"] == doomed] == []


def test_custom_object_finalizer_keeps_namespace_terminating(cluster: Cluster, widgets: Widgets, doomed: str):
    widgets.make(doomed, "held", finalizers=["example.com/hold"])
    widgets.make(doomed, "free")
    cluster.kubectl("delete", "namespace", doomed, "--wait=false")

    def conditions():
        ns = get_json(cluster, "namespace", doomed)
        conds = {c["type"]: c for c in ns["status"].get("conditions") or []}
        remaining = conds.get("NamespaceFinalizersRemaining") or {}
        return ns["status"]["phase"] == "Terminating" and remaining.get("status") == "True" and conds

    conds = wait_until(conditions, what="Terminating with NamespaceFinalizersRemaining")
    assert (conds["NamespaceContentRemaining"]["status"], conds["NamespaceContentRemaining"]["reason"],
            conds["NamespaceContentRemaining"]["message"]) == (
        "True", "SomeResourcesRemain", f"Some resources are remaining: {widgets.resource} has 1 resource instances")
    assert (conds["NamespaceFinalizersRemaining"]["reason"], conds["NamespaceFinalizersRemaining"]["message"]) == (
        "SomeFinalizersRemain",
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
    assert (conds["NamespaceDeletionDiscoveryFailure"]["status"], conds["NamespaceDeletionDiscoveryFailure"]["reason"],
            conds["NamespaceDeletionDiscoveryFailure"]["message"]) == (
        "False", "ResourcesDiscovered", "All resources successfully discovered")
    assert (conds["NamespaceDeletionContentFailure"]["status"], conds["NamespaceDeletionContentFailure"]["reason"]) == (
        "False", "ContentDeleted")
    held = lookup(cluster, doomed, widgets.resource, "held")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert gone(cluster, doomed, widgets.resource, "free")
    # `kubectl describe` shows the same conditions
    described = cluster.kubectl("describe", "namespace", doomed).stdout
    assert "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances" \
        in described

    cluster.kubectl("patch", widgets.resource, "held", "-n", doomed, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: gone(cluster, "", "namespace", doomed), what="namespace removed")


def test_background_deletion_of_custom_owner_and_custom_dependent(cluster: Cluster, widgets: Widgets, ns: str):
    owner = widgets.make(ns, "owner")
    cm = configmap(cluster, ns, "owned", owner_ref(owner))
    # and a custom object owned by a built-in one
    child = widgets.make(ns, "child", owner=owner_ref(cm))
    assert child["metadata"]["ownerReferences"][0]["uid"] == cm["metadata"]["uid"]
    cluster.kubectl("delete", widgets.resource, "owner", "-n", ns)
    wait_until(lambda: gone(cluster, ns, "configmap", "owned"), what="configmap collected")
    wait_until(lambda: gone(cluster, ns, widgets.resource, "child"), what="custom dependent collected")


def test_foreground_deletion_of_custom_owner_waits_for_blocking_dependent(cluster: Cluster, widgets: Widgets,
                                                                           ns: str):
    owner = widgets.make(ns, "owner")
    configmap(cluster, ns, "blocker", owner_ref(owner, block=True), finalizers=["example.com/hold"])
    cluster.kubectl("delete", widgets.resource, "owner", "-n", ns, "--cascade=foreground", "--wait=false")

    def dependent_deleting():
        cm = lookup(cluster, ns, "configmap", "blocker")
        return cm is not None and cm["metadata"].get("deletionTimestamp") and cm

    wait_until(dependent_deleting, what="the collector deleting the dependent")
    # the owner stays, being deleted in foreground, while its blocking dependent exists
    time.sleep(2)
    live = lookup(cluster, ns, widgets.resource, "owner")
    assert live is not None, "owner went before its blockOwnerDeletion dependent"
    assert live["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in live["metadata"]["finalizers"]

    cluster.kubectl("patch", "configmap", "blocker", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: gone(cluster, ns, "configmap", "blocker"), what="dependent gone")
    wait_until(lambda: gone(cluster, ns, widgets.resource, "owner"), what="owner gone after its dependent")


def test_orphan_deletion_of_custom_owner_keeps_dependent(cluster: Cluster, widgets: Widgets, ns: str):
    owner = widgets.make(ns, "owner")
    configmap(cluster, ns, "kept", owner_ref(owner, block=True))
    cluster.kubectl("delete", widgets.resource, "owner", "-n", ns, "--cascade=orphan")
    wait_until(lambda: gone(cluster, ns, widgets.resource, "owner"), what="owner gone")
    cm = wait_until(lambda: (lambda c: c is not None and not c["metadata"].get("ownerReferences") and c)(
        lookup(cluster, ns, "configmap", "kept")), what="dependent kept without its ownerReference")
    assert not cm["metadata"].get("deletionTimestamp")
    time.sleep(1)
    assert lookup(cluster, ns, "configmap", "kept") is not None


def test_recreated_crd_is_followed(cluster: Cluster, ns: str):
    w = Widgets(cluster)
    w.create()
    try:
        widgets_owner = w.make(ns, "first")
        configmap(cluster, ns, "first-owned", owner_ref(widgets_owner))
        w.delete()
        # the CRD's deletion deleted its objects, and the collector their dependents
        wait_until(lambda: gone(cluster, ns, "configmap", "first-owned"), what="dependent of a deleted CRD's object")
        w.create()
        owner = w.make(ns, "second")
        configmap(cluster, ns, "second-owned", owner_ref(owner))
        cluster.kubectl("delete", w.resource, "second", "-n", ns)
        wait_until(lambda: gone(cluster, ns, "configmap", "second-owned"), what="dependent of a re-created CRD")
    finally:
        cluster.kubectl("delete", "crd", w.resource, "--wait=false", check=False)


def test_crd_stored_before_restart_is_followed(fresh_cluster: Cluster):
    w = Widgets(fresh_cluster)
    w.create()
    fresh_cluster.kubectl("create", "namespace", "app")
    owner = w.make("app", "owner")
    configmap(fresh_cluster, "app", "owned", owner_ref(owner))
    w.make("app", "other")
    fresh_cluster.stop()
    fresh_cluster.start()
    fresh_cluster.kubectl("delete", w.resource, "owner", "-n", "app")
    wait_until(lambda: gone(fresh_cluster, "app", "configmap", "owned"), what="configmap collected after restart")
    fresh_cluster.kubectl("delete", "namespace", "app", "--timeout=60s")
    assert get_json(fresh_cluster, w.resource, "--all-namespaces")["items"] == []
