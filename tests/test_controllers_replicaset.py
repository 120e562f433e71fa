"""ReplicaSet and ReplicationController controllers, driven by the real kubectl.

Given a cluster without nodes (pods stay Pending), the tests play the kubelet's part by marking
pods Ready through the status subresource.
"""

from __future__ import annotations

import re
import time

import pytest
from test_controllers_support import get_json, items, make_ready, wait_until

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  minReadySeconds: {min_ready}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, tier: backend}}
    spec:
      containers:
      - name: main
        image: nginx:1.25
"""

RC = """
apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: nginx:1.25
"""

ORPHAN_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  containers:
  - name: main
    image: nginx:1.25
"""


def settle_orphan() -> None:
    """Upstream's e2e waits for the orphan to run before creating its controller. A controller that has
    not seen the orphan yet creates a replica of its own; of the two pending pods created in the same
    second, the scale-down may then remove either (upstream's ranking has no tie-break), the orphan too."""
    time.sleep(1.0)


@pytest.fixture
def core(cluster):
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


def active_pods(cluster, ns: str, selector: str) -> list[dict]:
    return [p for p in items(cluster, "pods", ns, "-l", selector) if not p["metadata"].get("deletionTimestamp")]


def test_replicaset_creates_owned_pods_and_reports_status(cluster, ns, core):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RS.format(name="rs1", replicas=3, min_ready=0))
    pods = wait_until(lambda: (p := active_pods(cluster, ns, "app=rs1")) and len(p) == 3 and p, what="3 pods")
    rs = get_json(cluster, "rs", "rs1", "-n", ns)
    for pod in pods:
        m = pod["metadata"]
        assert re.fullmatch(r"rs1-[bcdfghjklmnpqrstvwxz2456789]{5}", m["name"]), m["name"]
        assert m["generateName"] == "rs1-"
        assert m["labels"] == {"app": "rs1", "tier": "backend"}
        assert m["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1",
                                         "uid": rs["metadata"]["uid"], "controller": True,
                                         "blockOwnerDeletion": True}]
    st = wait_until(lambda: (s := get_json(cluster, "rs", "rs1", "-n", ns)["status"]).get("replicas") == 3 and s)
    assert st.get("readyReplicas", 0) == 0 and st.get("availableReplicas", 0) == 0
    assert st["fullyLabeledReplicas"] == 3 and st["observedGeneration"] == 1

    make_ready(core, ns, "app=rs1")
    st = wait_until(lambda: (s := get_json(cluster, "rs", "rs1", "-n", ns)["status"]).get("availableReplicas") == 3
                    and s, what="3 available")
    assert st["readyReplicas"] == 3
    out = cluster.kubectl("get", "rs", "rs1", "-n", ns).stdout.splitlines()
    assert out[1].split()[:4] == ["rs1", "3", "3", "3"]

    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=rs1").stdout
    assert "SuccessfulCreate" in events and f"Created pod: {pods[0]['metadata']['name']}" in events


def test_replicaset_replaces_deleted_pod_and_scales(cluster, ns, core):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RS.format(name="rs2", replicas=2, min_ready=0))
    pods = wait_until(lambda: (p := active_pods(cluster, ns, "app=rs2")) and len(p) == 2 and p)
    victim = pods[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "-n", ns)
    now = wait_until(lambda: (p := active_pods(cluster, ns, "app=rs2")) and len(p) == 2 and
                     victim not in {x["metadata"]["name"] for x in p} and p, what="replacement pod")
    assert len(now) == 2

    cluster.kubectl("scale", "rs", "rs2", "-n", ns, "--replicas=5")
    wait_until(lambda: len(active_pods(cluster, ns, "app=rs2")) == 5, what="5 pods")
    # two ready pods, three pending: scaling down to 2 keeps the ready ones
    ready = {p["metadata"]["name"] for p in active_pods(cluster, ns, "app=rs2")[:2]}
    for name in ready:
        core.patch_namespaced_pod_status(name, ns, {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}]}})
    wait_until(lambda: get_json(cluster, "rs", "rs2", "-n", ns)["status"].get("readyReplicas") == 2)
    cluster.kubectl("scale", "rs", "rs2", "-n", ns, "--replicas=2")
    left = wait_until(lambda: (p := active_pods(cluster, ns, "app=rs2")) and len(p) == 2 and p, what="2 pods")
    assert {p["metadata"]["name"] for p in left} == ready
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=rs2").stdout
    assert "SuccessfulDelete" in events and "Deleted pod: " in events


def test_burst_creation_creates_exactly_the_replicas(cluster, ns):
    """Expectations: a slow informer never causes a second round of creations."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RS.format(name="burst", replicas=40, min_ready=0))
    wait_until(lambda: len(active_pods(cluster, ns, "app=burst")) >= 40, timeout=60, what="40 pods")
    time.sleep(1.5)
    assert len(active_pods(cluster, ns, "app=burst")) == 40
    assert get_json(cluster, "rs", "burst", "-n", ns)["status"]["replicas"] == 40


def test_min_ready_seconds_delays_availability(cluster, ns, core):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RS.format(name="slow", replicas=1, min_ready=3))
    wait_until(lambda: len(active_pods(cluster, ns, "app=slow")) == 1)
    make_ready(core, ns, "app=slow")
    st = wait_until(lambda: (s := get_json(cluster, "rs", "slow", "-n", ns)["status"]).get("readyReplicas") == 1
                    and s)
    assert st.get("availableReplicas", 0) == 0
    wait_until(lambda: get_json(cluster, "rs", "slow", "-n", ns)["status"].get("availableReplicas") == 1,
               timeout=15, what="available after minReadySeconds")


@pytest.mark.conformance("Replica Set, adopt matching pods and release non matching pods")
def test_replicaset_adopts_orphan_and_releases_relabelled_pod(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ORPHAN_POD.format(name="pod-adoption-release",
                                                                          app="pod-adoption-release"))
    settle_orphan()
    rs_yaml = RS.format(name="pod-adoption-release", replicas=1, min_ready=0).replace(
        "{app: pod-adoption-release, tier: backend}", "{app: pod-adoption-release}")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=rs_yaml)
    rs_uid = get_json(cluster, "rs", "pod-adoption-release", "-n", ns)["metadata"]["uid"]

    def owner_uid() -> str | None:
        refs = get_json(cluster, "pod", "pod-adoption-release", "-n", ns)["metadata"].get("ownerReferences") or []
        return refs[0]["uid"] if refs else None

    wait_until(lambda: owner_uid() == rs_uid, what="adoption")
    time.sleep(0.5)
    assert len(active_pods(cluster, ns, "app=pod-adoption-release")) == 1  # adopted, not duplicated

    cluster.kubectl("label", "pod", "pod-adoption-release", "-n", ns, "app=released", "--overwrite")
    wait_until(lambda: owner_uid() is None, what="release")
    wait_until(lambda: len(active_pods(cluster, ns, "app=pod-adoption-release")) == 1, what="replacement")


@pytest.mark.conformance("Replication Controller, adopt matching pods")
def test_replication_controller_adopts_orphan(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ORPHAN_POD.format(name="pod-adoption", app="pod-adoption"))
    settle_orphan()
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RC.format(name="pod-adoption", replicas=1))
    rc_uid = get_json(cluster, "rc", "pod-adoption", "-n", ns)["metadata"]["uid"]
    wait_until(lambda: [r["uid"] for r in get_json(cluster, "pod", "pod-adoption", "-n", ns)["metadata"]
                        .get("ownerReferences") or []] == [rc_uid], what="adoption")
    ref = get_json(cluster, "pod", "pod-adoption", "-n", ns)["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicationController" and ref["apiVersion"] == "v1" and ref["controller"] is True
    time.sleep(0.5)
    assert len(active_pods(cluster, ns, "app=pod-adoption")) == 1


@pytest.mark.conformance("Replication Controller, release pods")
def test_replication_controller_releases_relabelled_pod(cluster, ns, core):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=RC.format(name="pod-release", replicas=1))
    pod = wait_until(lambda: (p := active_pods(cluster, ns, "app=pod-release")) and p[0])
    name = pod["metadata"]["name"]
    cluster.kubectl("label", "pod", name, "-n", ns, "app=released", "--overwrite")
    wait_until(lambda: not get_json(cluster, "pod", name, "-n", ns)["metadata"].get("ownerReferences"),
               what="release")
    wait_until(lambda: len(active_pods(cluster, ns, "app=pod-release")) == 1, what="replacement")
    make_ready(core, ns, "app=pod-release")
    st = wait_until(lambda: (s := get_json(cluster, "rc", "pod-release", "-n", ns)["status"]).get(
        "availableReplicas") == 1 and s)
    assert st["replicas"] == 1 and st["readyReplicas"] == 1


QUOTA_RC = """
apiVersion: v1
kind: ResourceQuota
metadata:
  name: condition-test
spec:
  hard:
    pods: "2"
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: condition-test
spec:
  replicas: 3
  selector: {name: condition-test}
  template:
    metadata:
      labels: {name: condition-test}
    spec:
      containers:
      - name: httpd
        image: httpd:2.4
"""


@pytest.mark.conformance("Replication Controller, check for issues like exceeding allocated quota")
def test_replication_controller_surfaces_quota_failure(cluster, ns):
    head, rc = QUOTA_RC.split("---")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=head)
    wait_until(lambda: get_json(cluster, "quota", "condition-test", "-n", ns).get("status", {}).get("hard"),
               what="quota status (resource quota controller)")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=rc)

    def failure():
        conds = get_json(cluster, "rc", "condition-test", "-n", ns).get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "ReplicaFailure"), None)

    cond = wait_until(failure, what="ReplicaFailure condition")
    assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
    assert "exceeded quota" in cond["message"]
    assert len(active_pods(cluster, ns, "name=condition-test")) == 2
    cluster.kubectl("scale", "rc", "condition-test", "-n", ns, "--replicas=2")
    wait_until(lambda: failure() is None, what="condition cleared")
