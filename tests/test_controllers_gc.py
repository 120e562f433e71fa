"""Garbage collector: kubectl delete --cascade=background|foreground|orphan, and ownerReference graphs."""

from __future__ import annotations

import json
import time

import pytest
from test_controllers_support import apply, deployment_manifest, get_json, items, wait_until

RC = """
apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
      - name: main
        image: nginx:1.25
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{cycle: "yes"}}
spec:
  containers:
  - name: main
    image: nginx:1.25
"""


def exists(cluster, *args: str) -> bool:
    r = cluster.kubectl("get", *args, "-o", "name", check=False)
    return r.returncode == 0 and bool(r.stdout.strip())


def pod_names(cluster, ns: str, selector: str) -> set[str]:
    return {p["metadata"]["name"] for p in items(cluster, "pods", ns, "-l", selector)}


@pytest.mark.conformance("Garbage Collector, delete deployment,  propagation policy background")
def test_background_deletion_removes_replicaset_and_pods(cluster, ns):
    apply(cluster, ns, deployment_manifest("bg", 2))
    wait_until(lambda: len(pod_names(cluster, ns, "app=bg")) == 2, what="pods")
    cluster.kubectl("delete", "deploy", "bg", "-n", ns, "--cascade=background")
    wait_until(lambda: not items(cluster, "rs", ns, "-l", "app=bg"), what="replicaset collected")
    wait_until(lambda: not pod_names(cluster, ns, "app=bg"), what="pods collected")


@pytest.mark.conformance("Garbage Collector, delete replication controller, propagation policy background")
def test_background_deletion_of_rc_removes_pods(cluster, ns):
    apply(cluster, ns, RC.format(name="rcbg", app="rcbg", replicas=2))
    wait_until(lambda: len(pod_names(cluster, ns, "app=rcbg")) == 2)
    cluster.kubectl("delete", "rc", "rcbg", "-n", ns)  # kubectl's default cascade is background
    wait_until(lambda: not pod_names(cluster, ns, "app=rcbg"), what="pods collected")


@pytest.mark.conformance("Garbage Collector, delete replication controller, after owned pods")
def test_foreground_deletion_waits_for_dependents(cluster, ns):
    apply(cluster, ns, RC.format(name="fg", app="fg", replicas=3))
    pods = wait_until(lambda: (p := pod_names(cluster, ns, "app=fg")) and len(p) == 3 and p)
    held = sorted(pods)[0]
    # a finalizer of our own keeps one pod (and so the RC) around
    cluster.kubectl("patch", "pod", held, "-n", ns, "--type=merge", "-p",
                    '{"metadata":{"finalizers":["example.com/hold"]}}')
    cluster.kubectl("delete", "rc", "fg", "-n", ns, "--cascade=foreground", "--wait=false")
    rc = get_json(cluster, "rc", "fg", "-n", ns)
    assert rc["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rc["metadata"]["finalizers"]
    wait_until(lambda: all(p["metadata"].get("deletionTimestamp") for p in items(cluster, "pods", ns, "-l", "app=fg"))
               and len(items(cluster, "pods", ns, "-l", "app=fg")) == 1, what="unheld pods gone")
    time.sleep(1)
    assert exists(cluster, "rc", "fg", "-n", ns)  # blocked by the remaining dependent
    cluster.kubectl("patch", "pod", held, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: not exists(cluster, "rc", "fg", "-n", ns), what="rc deleted after its pods")


@pytest.mark.conformance("Garbage Collector, delete deployment, propagation policy orphan")
def test_orphan_deletion_keeps_replicaset_and_pods(cluster, ns):
    apply(cluster, ns, deployment_manifest("orph", 2))
    wait_until(lambda: len(pod_names(cluster, ns, "app=orph")) == 2)
    rs_name = items(cluster, "rs", ns, "-l", "app=orph")[0]["metadata"]["name"]
    cluster.kubectl("delete", "deploy", "orph", "-n", ns, "--cascade=orphan", "--wait=false")
    wait_until(lambda: not exists(cluster, "deploy", "orph", "-n", ns), what="deployment gone")
    rs = wait_until(lambda: (r := get_json(cluster, "rs", rs_name, "-n", ns)) and
                    not r["metadata"].get("ownerReferences") and r, what="ownerReference removed")
    assert rs["spec"]["replicas"] == 2
    time.sleep(1)
    pods = items(cluster, "pods", ns, "-l", "app=orph")
    assert len(pods) == 2
    assert all(p["metadata"]["ownerReferences"][0]["name"] == rs_name for p in pods)


@pytest.mark.conformance("Garbage Collector, delete replication controller, propagation policy orphan")
def test_orphan_deletion_of_rc_keeps_pods(cluster, ns):
    apply(cluster, ns, RC.format(name="rcorph", app="rcorph", replicas=3))
    wait_until(lambda: len(pod_names(cluster, ns, "app=rcorph")) == 3)
    cluster.kubectl("delete", "rc", "rcorph", "-n", ns, "--cascade=orphan", "--wait=false")
    wait_until(lambda: not exists(cluster, "rc", "rcorph", "-n", ns))
    wait_until(lambda: all(not p["metadata"].get("ownerReferences")
                           for p in items(cluster, "pods", ns, "-l", "app=rcorph")), what="pods orphaned")
    time.sleep(1)
    assert len(pod_names(cluster, ns, "app=rcorph")) == 3


@pytest.mark.conformance("Garbage Collector, dependency cycle")
def test_dependency_cycle_does_not_block_collection(cluster, ns):
    uids = {}
    for name in ("pod1", "pod2", "pod3"):
        apply(cluster, ns, POD.format(name=name))
        uids[name] = get_json(cluster, "pod", name, "-n", ns)["metadata"]["uid"]
    for child, owner in (("pod1", "pod3"), ("pod2", "pod1"), ("pod3", "pod2")):
        ref = {"apiVersion": "v1", "kind": "Pod", "name": owner, "uid": uids[owner], "blockOwnerDeletion": True}
        cluster.kubectl("patch", "pod", child, "-n", ns, "--type=merge", "-p",
                        json.dumps({"metadata": {"ownerReferences": [ref]}}))
    cluster.kubectl("delete", "pod", "pod1", "-n", ns)
    wait_until(lambda: not pod_names(cluster, ns, "cycle=yes"), what="whole cycle collected")


@pytest.mark.conformance("Garbage Collector, multiple owners")
def test_dependents_with_another_valid_owner_survive_foreground_deletion(cluster, ns):
    apply(cluster, ns, RC.format(name="rc1", app="multi", replicas=6))
    apply(cluster, ns, RC.format(name="rc2", app="other", replicas=0))
    pods = sorted(wait_until(lambda: (p := pod_names(cluster, ns, "app=multi")) and len(p) == 6 and p))
    rc2 = get_json(cluster, "rc", "rc2", "-n", ns)["metadata"]
    keep = pods[:3]
    for name in keep:
        refs = get_json(cluster, "pod", name, "-n", ns)["metadata"]["ownerReferences"]
        refs.append({"apiVersion": "v1", "kind": "ReplicationController", "name": "rc2", "uid": rc2["uid"]})
        cluster.kubectl("patch", "pod", name, "-n", ns, "--type=merge", "-p",
                        json.dumps({"metadata": {"ownerReferences": refs}}))
    cluster.kubectl("delete", "rc", "rc1", "-n", ns, "--cascade=foreground", "--wait=false")
    wait_until(lambda: not exists(cluster, "rc", "rc1", "-n", ns), what="rc1 deleted")
    left = {p["metadata"]["name"]: p for p in items(cluster, "pods", ns, "-l", "app=multi")}
    assert sorted(left) == keep
    for p in left.values():
        assert not p["metadata"].get("deletionTimestamp")
        assert [r["name"] for r in p["metadata"]["ownerReferences"]] == ["rc2"]
