"""Upstream's sig-apps conformance behaviours, end to end through the official client: status and
scale subresources, list/deletecollection by label, lifecycles of ReplicaSets, ReplicationControllers,
Deployments, StatefulSets, DaemonSets, ControllerRevisions, Jobs, CronJobs and PodDisruptionBudgets.
The shared cluster runs no kubelet, so the tests play the node's part (make_running)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from test_workloads_support import make_running, pods, set_status, wait_until


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = cluster.api_client()
    yield c
    c.close()


def template(labels: dict, image: str = "nginx:1.25") -> dict:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": image}], "terminationGracePeriodSeconds": 0}}


def workload(kind: str, name: str, labels: dict, replicas: int | None = 1, **spec) -> dict:
    api_version = "v1" if kind == "ReplicationController" else "apps/v1"
    body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"selector": labels if kind == "ReplicationController" else {"matchLabels": labels},
                     "template": template(labels), **spec}}
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body


def rfc3339(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions_of(obj) -> list[str]:
    return [c.type for c in (obj.status.conditions or [])]


def running_pods(cluster: Cluster, ns: str, selector: str) -> list[dict]:
    make_running(cluster, ns, selector)
    return [p for p in pods(cluster, ns, selector) if (p.get("status") or {}).get("phase") == "Running"]


def check_status_subresource(read, replace_status, patch_status, name: str, ns: str) -> None:
    """Upstream's status sub-resource scenario: read /status, update it with a condition, patch it
    with another; both must be visible to later reads and the spec must stay as it was."""
    before = read(name, ns)
    cond = {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test",
            "lastTransitionTime": rfc3339()}

    def update() -> object:
        cur = read(name, ns)
        cur.status.conditions = [*(cur.status.conditions or []), cond]
        try:
            return replace_status(name, ns, cur)
        except ApiException as e:
            if e.status == 409:  # the controller wrote status in between: read again
                return None
            raise
    updated = wait_until(update, timeout=20, what="status update without conflict")
    assert "StatusUpdate" in conditions_of(updated)
    assert "StatusUpdate" in conditions_of(read(name, ns))
    patched = patch_status(name, ns, {"metadata": {"annotations": {"patchedstatus": "true"}},
                                      "status": {"conditions": [
                                          {"type": "StatusPatched", "status": "True", "reason": "E2E",
                                           "lastTransitionTime": rfc3339()}]}})
    assert "StatusPatched" in conditions_of(patched)
    got = read(name, ns)
    assert "StatusPatched" in conditions_of(got)
    assert got.spec == before.spec


# ------------------------------------------------------------------ ReplicaSet
@pytest.mark.conformance("ReplicaSet, status sub-resource")
def test_replicaset_status_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(ns, workload("ReplicaSet", "rs-status", {"app": "rs-status"}))
    rs = apps.read_namespaced_replica_set_status("rs-status", ns)
    assert rs.metadata.name == "rs-status" and rs.spec.replicas == 1
    check_status_subresource(apps.read_namespaced_replica_set_status, apps.replace_namespaced_replica_set_status,
                             apps.patch_namespaced_replica_set_status, "rs-status", ns)


@pytest.mark.conformance("ReplicaSet, completes the scaling of a ReplicaSet subresource")
def test_replicaset_scale_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(ns, workload("ReplicaSet", "rs-scale", {"app": "rs-scale"}))
    wait_until(lambda: len(running_pods(cluster, ns, "app=rs-scale")) == 1, what="1 running pod")
    scale = apps.read_namespaced_replica_set_scale("rs-scale", ns)
    assert scale.spec.replicas == 1 and scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    scale.metadata.resource_version = None  # unconditional, as upstream's update of the scale
    scale.spec.replicas = 2
    assert apps.replace_namespaced_replica_set_scale("rs-scale", ns, scale).spec.replicas == 2
    assert apps.read_namespaced_replica_set("rs-scale", ns).spec.replicas == 2
    wait_until(lambda: len(pods(cluster, ns, "app=rs-scale")) == 2, what="2 pods")
    patched = apps.patch_namespaced_replica_set_scale("rs-scale", ns, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    assert apps.read_namespaced_replica_set("rs-scale", ns).spec.replicas == 4
    wait_until(lambda: len(pods(cluster, ns, "app=rs-scale")) == 4, what="4 pods")


@pytest.mark.conformance("ReplicaSet, is created, Replaced and Patched")
def test_replicaset_replace_and_patch(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(ns, workload("ReplicaSet", "rs-rp", {"app": "rs-rp"}))
    wait_until(lambda: len(running_pods(cluster, ns, "app=rs-rp")) == 1, what="1 running pod")
    rs = apps.read_namespaced_replica_set("rs-rp", ns)
    rs.spec.replicas = 2
    assert apps.replace_namespaced_replica_set("rs-rp", ns, rs).spec.replicas == 2
    wait_until(lambda: len(running_pods(cluster, ns, "app=rs-rp")) == 2, what="2 running pods")
    wait_until(lambda: apps.read_namespaced_replica_set("rs-rp", ns).status.ready_replicas == 2, what="2 ready")
    patched = apps.patch_namespaced_replica_set("rs-rp", ns, {"metadata": {"labels": {"rs": "patched"}},
                                                              "spec": {"replicas": 3}})
    assert patched.metadata.labels["rs"] == "patched" and patched.spec.replicas == 3
    wait_until(lambda: len(running_pods(cluster, ns, "app=rs-rp")) == 3, what="3 running pods")
    rs = wait_until(lambda: (r := apps.read_namespaced_replica_set("rs-rp", ns)).status.ready_replicas == 3 and r,
                    what="3 ready replicas")
    assert rs.status.replicas == 3 and rs.status.available_replicas == 3


@pytest.mark.conformance("ReplicaSet, list and delete a collection of ReplicaSets")
def test_replicaset_list_and_deletecollection(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    label = "e2e-rs-" + uuid.uuid4().hex[:6]
    apps.create_namespaced_replica_set(ns, workload("ReplicaSet", "rs-coll", {label: "true"}))
    apps.create_namespaced_replica_set(ns, workload("ReplicaSet", "rs-other", {"app": "other"}))
    listed = apps.list_replica_set_for_all_namespaces(label_selector=f"{label}=true")
    assert [r.metadata.name for r in listed.items] == ["rs-coll"]
    apps.delete_collection_namespaced_replica_set(ns, label_selector=f"{label}=true")
    wait_until(lambda: not apps.list_namespaced_replica_set(ns, label_selector=f"{label}=true").items,
               what="the collection deleted")
    assert [r.metadata.name for r in apps.list_namespaced_replica_set(ns).items] == ["rs-other"]


# ------------------------------------------------------------------ ReplicationController
@pytest.mark.conformance("Replication Controller, get and update ReplicationController scale")
def test_replicationcontroller_scale(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_replication_controller(ns, workload("ReplicationController", "rc-scale",
                                                               {"app": "rc-scale"}))
    scale = core.read_namespaced_replication_controller_scale("rc-scale", ns)
    assert scale.spec.replicas == 1 and scale.metadata.name == "rc-scale"
    scale.metadata.resource_version = None  # unconditional, as upstream's update of the scale
    scale.spec.replicas = 2
    assert core.replace_namespaced_replication_controller_scale("rc-scale", ns, scale).spec.replicas == 2
    wait_until(lambda: core.read_namespaced_replication_controller("rc-scale", ns).spec.replicas == 2,
               what="rc spec.replicas 2")
    wait_until(lambda: core.read_namespaced_replication_controller_scale("rc-scale", ns).status.replicas == 2,
               what="scale status.replicas 2")


@pytest.mark.conformance("Replication Controller, lifecycle")
def test_replicationcontroller_lifecycle(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    labels = {"test-rc-static": "true"}
    w = watch.Watch()
    rv = core.list_namespaced_replication_controller(ns, label_selector="test-rc-static=true").metadata.resource_version
    core.create_namespaced_replication_controller(ns, workload("ReplicationController", "rc-test", labels))
    seen = None
    for e in w.stream(core.list_namespaced_replication_controller, ns, label_selector="test-rc-static=true",
                      resource_version=rv, timeout_seconds=10):
        seen = (e["type"], e["object"].metadata.name)
        w.stop()
        break
    assert seen == ("ADDED", "rc-test")
    got = core.read_namespaced_replication_controller("rc-test", ns)
    assert got.spec.replicas == 1 and got.spec.selector == labels
    patched = core.patch_namespaced_replication_controller("rc-test", ns, {"metadata": {"labels": {"rc": "patched"}}})
    assert patched.metadata.labels["rc"] == "patched"
    st = core.patch_namespaced_replication_controller_status("rc-test", ns,
                                                             {"status": {"readyReplicas": 0, "availableReplicas": 0}})
    assert not st.status.ready_replicas and not st.status.available_replicas
    scaled = core.patch_namespaced_replication_controller_scale("rc-test", ns, {"spec": {"replicas": 2}})
    assert scaled.spec.replicas == 2
    wait_until(lambda: len(running_pods(cluster, ns, "test-rc-static=true")) == 2, what="2 running pods")
    rc = wait_until(lambda: (r := core.read_namespaced_replication_controller("rc-test", ns))
                    .status.ready_replicas == 2 and r, what="2 ready replicas")
    assert rc.status.available_replicas == 2
    rc.metadata.labels["rc"] = "updated"
    assert core.replace_namespaced_replication_controller("rc-test", ns, rc).metadata.labels["rc"] == "updated"
    listed = core.list_replication_controller_for_all_namespaces(label_selector="test-rc-static=true")
    assert [(r.metadata.namespace, r.metadata.name) for r in listed.items
            if r.metadata.namespace == ns] == [(ns, "rc-test")]
    rv = core.read_namespaced_replication_controller("rc-test", ns).metadata.resource_version
    core.delete_collection_namespaced_replication_controller(ns, label_selector="test-rc-static=true")
    events = []
    for e in w.stream(core.list_namespaced_replication_controller, ns, label_selector="test-rc-static=true",
                      resource_version=rv, timeout_seconds=10):
        events.append(e["type"])
        if e["type"] == "DELETED":
            w.stop()
    assert events[-1] == "DELETED"
    wait_until(lambda: not core.list_namespaced_replication_controller(ns).items, what="rc gone")


# ------------------------------------------------------------------ Deployment
@pytest.mark.conformance("Deployment, status sub-resource")
def test_deployment_status_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, workload("Deployment", "dep-status", {"app": "dep-status"}))
    d = apps.read_namespaced_deployment_status("dep-status", ns)
    assert d.metadata.name == "dep-status"
    check_status_subresource(apps.read_namespaced_deployment_status, apps.replace_namespaced_deployment_status,
                             apps.patch_namespaced_deployment_status, "dep-status", ns)


@pytest.mark.conformance("Deployment, completes the scaling of a Deployment subresource")
def test_deployment_scale_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, workload("Deployment", "dep-scale", {"app": "dep-scale"}))
    wait_until(lambda: len(running_pods(cluster, ns, "app=dep-scale")) == 1, what="1 running pod")
    scale = apps.read_namespaced_deployment_scale("dep-scale", ns)
    assert scale.spec.replicas == 1
    scale.metadata.resource_version = None  # unconditional, as upstream's update of the scale
    scale.spec.replicas = 2
    assert apps.replace_namespaced_deployment_scale("dep-scale", ns, scale).spec.replicas == 2
    assert apps.read_namespaced_deployment("dep-scale", ns).spec.replicas == 2
    patched = apps.patch_namespaced_deployment_scale("dep-scale", ns, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    assert apps.read_namespaced_deployment("dep-scale", ns).spec.replicas == 4
    wait_until(lambda: len(pods(cluster, ns, "app=dep-scale")) == 4, what="4 pods")


@pytest.mark.conformance("Deployment, completes the lifecycle of a Deployment")
def test_deployment_lifecycle(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    labels = {"test-deployment-static": "true"}
    apps.create_namespaced_deployment(ns, workload("Deployment", "test-deployment", labels))
    wait_until(lambda: len(running_pods(cluster, ns, "test-deployment-static=true")) == 1, what="1 running pod")
    wait_until(lambda: apps.read_namespaced_deployment("test-deployment", ns).status.available_replicas == 1,
               what="1 available replica")
    patched = apps.patch_namespaced_deployment("test-deployment", ns, {
        "metadata": {"labels": {"test-deployment": "patched"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}})
    assert patched.metadata.labels["test-deployment"] == "patched" and patched.spec.replicas == 2

    def rolled() -> bool:
        make_running(cluster, ns, "test-deployment-static=true")
        d = apps.read_namespaced_deployment("test-deployment", ns)
        return (d.status.updated_replicas == 2 and d.status.ready_replicas == 2 and d.status.replicas == 2
                and d.status.observed_generation == d.metadata.generation)
    wait_until(rolled, timeout=60, what="2 updated ready replicas on the new image")
    assert {p["spec"]["containers"][0]["image"] for p in pods(cluster, ns, "test-deployment-static=true")} == \
        {"nginx:1.26"}

    scaled = apps.patch_namespaced_deployment_scale("test-deployment", ns, {"spec": {"replicas": 1}})
    assert scaled.spec.replicas == 1
    wait_until(lambda: apps.read_namespaced_deployment("test-deployment", ns).status.replicas == 1 or
               make_running(cluster, ns, "test-deployment-static=true") < 0, what="scaled to 1")

    st = apps.read_namespaced_deployment_status("test-deployment", ns)
    assert st.status.observed_generation >= 3
    patched = apps.patch_namespaced_deployment_status("test-deployment", ns, {"status": {"conditions": [
        {"type": "StatusPatched", "status": "True", "lastTransitionTime": rfc3339()}]}})
    assert "StatusPatched" in conditions_of(patched)
    assert "StatusPatched" in conditions_of(apps.read_namespaced_deployment_status("test-deployment", ns))

    apps.delete_collection_namespaced_deployment(ns, label_selector="test-deployment-static=true")
    wait_until(lambda: not apps.list_namespaced_deployment(ns, label_selector="test-deployment-static=true").items,
               what="deployment deleted")


# ------------------------------------------------------------------ StatefulSet
def sts(name: str, labels: dict, replicas: int = 1) -> dict:
    return workload("StatefulSet", name, labels, replicas, serviceName=name)


@pytest.mark.conformance("StatefulSet, status sub-resource")
def test_statefulset_status_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(ns, sts("ss-status", {"app": "ss-status"}))
    assert apps.read_namespaced_stateful_set_status("ss-status", ns).metadata.name == "ss-status"
    check_status_subresource(apps.read_namespaced_stateful_set_status, apps.replace_namespaced_stateful_set_status,
                             apps.patch_namespaced_stateful_set_status, "ss-status", ns)


@pytest.mark.conformance("StatefulSet resource Replica scaling")
def test_statefulset_scale_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(ns, sts("ss-scale", {"app": "ss-scale"}))
    wait_until(lambda: len(running_pods(cluster, ns, "app=ss-scale")) == 1, what="ss-scale-0 running")
    scale = apps.read_namespaced_stateful_set_scale("ss-scale", ns)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=ss-scale"
    scale.metadata.resource_version = None  # unconditional, as upstream's update of the scale
    scale.spec.replicas = 2
    assert apps.replace_namespaced_stateful_set_scale("ss-scale", ns, scale).spec.replicas == 2
    assert apps.read_namespaced_stateful_set("ss-scale", ns).spec.replicas == 2
    wait_until(lambda: [p["metadata"]["name"] for p in running_pods(cluster, ns, "app=ss-scale")] ==
               ["ss-scale-0", "ss-scale-1"], what="2 running replicas")


@pytest.mark.conformance("StatefulSet, list, patch and delete a collection of StatefulSets")
def test_statefulset_list_patch_deletecollection(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    label = "e2e-sts-" + uuid.uuid4().hex[:6]
    apps.create_namespaced_stateful_set(ns, sts("ss-coll", {label: "true"}))
    listed = apps.list_stateful_set_for_all_namespaces(label_selector=f"{label}=true")
    assert [s.metadata.name for s in listed.items] == ["ss-coll"]
    patched = apps.patch_namespaced_stateful_set("ss-coll", ns, {
        "metadata": {"labels": {"sts": "patched"}},
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}})
    assert patched.metadata.labels["sts"] == "patched"
    assert patched.spec.template.spec.containers[0].image == "nginx:1.26"
    apps.delete_collection_namespaced_stateful_set(ns, label_selector=f"{label}=true")
    wait_until(lambda: not apps.list_namespaced_stateful_set(ns, label_selector=f"{label}=true").items,
               what="the collection deleted")


@pytest.mark.conformance("StatefulSet, Recreate Failed Pod")
def test_statefulset_recreates_failed_pod(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(ns, sts("ss-fail", {"app": "ss-fail"}))
    first = wait_until(lambda: running_pods(cluster, ns, "app=ss-fail"), what="ss-fail-0 running")[0]
    assert first["metadata"]["name"] == "ss-fail-0"
    # the node rejects the pod (as a kubelet does on a host port conflict): it goes Failed
    set_status(cluster, ns, "ss-fail-0", {"phase": "Failed", "reason": "OutOfhostPort",
                                          "message": "Pod was rejected: host port conflict"})

    def recreated() -> dict | None:
        for p in running_pods(cluster, ns, "app=ss-fail"):
            if p["metadata"]["uid"] != first["metadata"]["uid"]:
                return p
        return None
    again = wait_until(recreated, what="ss-fail-0 recreated and running")
    assert again["metadata"]["name"] == "ss-fail-0"


# ------------------------------------------------------------------ DaemonSet
@pytest.mark.conformance("DaemonSet, status sub-resource")
def test_daemonset_status_subresource(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(ns, workload("DaemonSet", "ds-status", {"app": "ds-status"}, None))
    assert apps.read_namespaced_daemon_set_status("ds-status", ns).metadata.name == "ds-status"
    check_status_subresource(apps.read_namespaced_daemon_set_status, apps.replace_namespaced_daemon_set_status,
                             apps.patch_namespaced_daemon_set_status, "ds-status", ns)


@pytest.mark.conformance("DaemonSet, list and delete a collection of DaemonSets")
def test_daemonset_list_and_deletecollection(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    label = "e2e-ds-" + uuid.uuid4().hex[:6]
    apps.create_namespaced_daemon_set(ns, workload("DaemonSet", "ds-coll", {label: "true"}, None))
    listed = apps.list_daemon_set_for_all_namespaces(label_selector=f"{label}=true")
    assert [d.metadata.name for d in listed.items] == ["ds-coll"]
    apps.delete_collection_namespaced_daemon_set(ns, label_selector=f"{label}=true")
    wait_until(lambda: not apps.list_namespaced_daemon_set(ns, label_selector=f"{label}=true").items,
               what="the collection deleted")


# ------------------------------------------------------------------ ControllerRevision
@pytest.mark.conformance("ControllerRevision, resource lifecycle")
def test_controllerrevision_lifecycle(cluster: Cluster, ns: str, api) -> None:
    apps = client.AppsV1Api(api)
    name = "e2e-" + uuid.uuid4().hex[:5] + "-daemon-set"
    ds_label = {"daemonset-name": name}
    selector = f"daemonset-name={name}"
    ds = apps.create_namespaced_daemon_set(ns, workload("DaemonSet", name, ds_label, None))
    assert [d.metadata.name for d in apps.list_daemon_set_for_all_namespaces(label_selector=selector).items] == [name]

    def revisions(n: int) -> list:
        items = apps.list_namespaced_controller_revision(ns, label_selector=selector).items
        return items if len(items) == n else []
    initial = wait_until(lambda: revisions(1), what="the DaemonSet's first revision")[0]
    ref = initial.metadata.owner_references[0]
    assert ref.kind == "DaemonSet" and ref.uid == ds.metadata.uid and initial.revision == 1

    patched = apps.patch_namespaced_controller_revision(initial.metadata.name, ns,
                                                        {"metadata": {"labels": {initial.metadata.name: "patched"}}})
    assert patched.metadata.labels[initial.metadata.name] == "patched"

    new = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
           "metadata": {"name": f"{name}-e2e", "labels": {**ds_label, "controller-revision-hash": "e2e"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                                             "uid": ds.metadata.uid, "controller": True,
                                             "blockOwnerDeletion": True}]},
           "data": initial.data, "revision": initial.revision + 1}
    created = apps.create_namespaced_controller_revision(ns, new)
    assert created.revision == 2
    listed = apps.list_namespaced_controller_revision(ns, label_selector=selector).items
    # both hold the current template: the DaemonSet controller may already have dropped the older one
    assert {r.metadata.name for r in listed} in ({initial.metadata.name, created.metadata.name},
                                                 {created.metadata.name})

    try:
        apps.delete_namespaced_controller_revision(initial.metadata.name, ns)
    except ApiException as e:
        assert e.status == 404
    current = wait_until(lambda: revisions(1), what="one revision")[0]
    assert current.metadata.name == f"{name}-e2e"
    time.sleep(1)  # the DaemonSet controller has seen the deletion: it must not bring the old revision back
    current = revisions(1)[0]
    assert current.metadata.name == f"{name}-e2e"

    current.metadata.labels[current.metadata.name] = "updated"
    updated = apps.replace_namespaced_controller_revision(current.metadata.name, ns, current)
    assert updated.metadata.labels[current.metadata.name] == "updated"

    apps.patch_namespaced_daemon_set(name, ns, {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 1}}}})
    wait_until(lambda: revisions(2), what="a new revision from the patched template")

    apps.delete_collection_namespaced_controller_revision(ns, label_selector=f"{current.metadata.name}=updated")
    last = wait_until(lambda: revisions(1), what="one revision left")[0]
    assert last.revision == 3


# ------------------------------------------------------------------ Job
@pytest.mark.conformance("Jobs, apply changes to status")
def test_job_status_subresource(cluster: Cluster, ns: str, api) -> None:
    batch = client.BatchV1Api(api)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job-status"},
           "spec": {"parallelism": 2, "completions": 4, "template": {
               "metadata": {"labels": {"app": "job-status"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}
    batch.create_namespaced_job(ns, job)
    wait_until(lambda: len(running_pods(cluster, ns, "app=job-status")) == 2, what="2 running pods")
    wait_until(lambda: batch.read_namespaced_job("job-status", ns).status.active == 2, what="2 active")
    start = rfc3339(datetime.now(UTC) - timedelta(minutes=1))
    patched = batch.patch_namespaced_job_status("job-status", ns, {
        "metadata": {"annotations": {"patchedstatus": "true"}}, "status": {"startTime": start}})
    assert patched.metadata.annotations.get("patchedstatus") == "true"
    assert rfc3339(patched.status.start_time) == start

    def replace() -> object:
        cur = batch.read_namespaced_job_status("job-status", ns)
        cur.status.start_time = datetime.now(UTC).replace(microsecond=0)
        try:
            return batch.replace_namespaced_job_status("job-status", ns, cur)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    replaced = wait_until(replace, what="status replaced")
    assert replaced.status.start_time != patched.status.start_time
    got = batch.read_namespaced_job_status("job-status", ns)
    assert got.status.start_time == replaced.status.start_time
    assert got.metadata.annotations.get("patchedstatus") == "true"


# ------------------------------------------------------------------ CronJob
def cronjob(name: str, suspend: bool = False, policy: str = "Allow", schedule: str = "*/1 * * * *") -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "labels": {"cj": name}},
            "spec": {"schedule": schedule, "suspend": suspend, "concurrencyPolicy": policy,
                     "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": {"template": {
                         "spec": {"restartPolicy": "OnFailure",
                                  "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}}}}}}


def jobs_of(batch, ns: str, cron: str) -> list:
    return [j for j in batch.list_namespaced_job(ns, label_selector=f"cron={cron}").items
            if not j.metadata.deletion_timestamp]


@pytest.mark.conformance("CronJob Suspend")
def test_cronjob_suspend_creates_no_jobs(cluster: Cluster, ns: str, api) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, cronjob("paused", suspend=True))
    # its last run is three minutes back, so it is overdue: only suspension holds the next job back
    past = rfc3339(datetime.now(UTC) - timedelta(minutes=3))
    batch.patch_namespaced_cron_job_status("paused", ns, {"status": {"lastScheduleTime": past}})
    deadline = time.time() + 3
    while time.time() < deadline:
        assert jobs_of(batch, ns, "paused") == []
        time.sleep(0.5)
    assert not batch.read_namespaced_cron_job("paused", ns).status.active
    # resumed, the overdue run happens at once: the wait above was long enough to see one
    batch.patch_namespaced_cron_job("paused", ns, {"spec": {"suspend": False}})
    wait_until(lambda: jobs_of(batch, ns, "paused"), timeout=10, what="a job once resumed")


@pytest.mark.slow
@pytest.mark.conformance("CronJob ReplaceConcurrent")
def test_cronjob_replace_runs_only_the_newest_job(cluster: Cluster, ns: str, api) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, cronjob("replacer", suspend=True, policy="Replace"))
    batch.patch_namespaced_cron_job_status("replacer", ns, {"status": {
        "lastScheduleTime": rfc3339(datetime.now(UTC) - timedelta(minutes=3))}})
    batch.patch_namespaced_cron_job("replacer", ns, {"spec": {"suspend": False}})
    first = wait_until(lambda: batch.read_namespaced_cron_job("replacer", ns).status.active, timeout=10,
                       what="the first active job")
    assert len(first) == 1
    # the next minute replaces the running job with a newer one
    later = wait_until(lambda: [a for a in batch.read_namespaced_cron_job("replacer", ns).status.active or []
                                if a.name != first[0].name], timeout=75, what="a replacing job")
    assert len(later) == 1
    wait_until(lambda: [j.metadata.name for j in jobs_of(batch, ns, "replacer")] == [later[0].name],
               what="only the newer job left")
    assert [a.name for a in batch.read_namespaced_cron_job("replacer", ns).status.active] == [later[0].name]


@pytest.mark.conformance("CronJob API Operations")
def test_cronjob_api_operations(cluster: Cluster, ns: str, api) -> None:
    batch = client.BatchV1Api(api)
    label = "cj-" + uuid.uuid4().hex[:6]
    body = cronjob("e2e-cj", suspend=True)
    body["metadata"]["labels"] = {label: "true"}
    created = batch.create_namespaced_cron_job(ns, body)
    assert created.spec.schedule == "*/1 * * * *"
    body2 = cronjob("e2e-cj2", suspend=True)
    body2["metadata"]["labels"] = {label: "true"}
    batch.create_namespaced_cron_job(ns, body2)
    assert batch.read_namespaced_cron_job("e2e-cj", ns).metadata.uid == created.metadata.uid
    assert len(batch.list_namespaced_cron_job(ns, label_selector=f"{label}=true").items) == 2
    assert len(batch.list_cron_job_for_all_namespaces(label_selector=f"{label}=true").items) == 2

    w = watch.Watch()
    stream = w.stream(batch.list_namespaced_cron_job, ns, label_selector=f"{label}=true",
                      resource_version=created.metadata.resource_version, timeout_seconds=10)
    patched = batch.patch_namespaced_cron_job("e2e-cj", ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    for e in stream:
        if e["type"] == "MODIFIED" and (e["object"].metadata.annotations or {}).get("patched") == "true":
            w.stop()
            break
    else:
        raise AssertionError("no MODIFIED watch event for the patch")

    cur = batch.read_namespaced_cron_job("e2e-cj", ns)
    cur.metadata.annotations["updated"] = "true"
    assert batch.replace_namespaced_cron_job("e2e-cj", ns, cur).metadata.annotations["updated"] == "true"

    st = batch.read_namespaced_cron_job_status("e2e-cj", ns)
    assert st.metadata.name == "e2e-cj"
    when = datetime.now(UTC).replace(microsecond=0)
    st.status.last_schedule_time = when
    updated = batch.replace_namespaced_cron_job_status("e2e-cj", ns, st)
    assert updated.status.last_schedule_time == when
    earlier = rfc3339(when - timedelta(minutes=5))
    patched = batch.patch_namespaced_cron_job_status("e2e-cj", ns, {
        "metadata": {"annotations": {"patchedstatus": "true"}}, "status": {"lastScheduleTime": earlier}})
    assert rfc3339(patched.status.last_schedule_time) == earlier
    assert patched.metadata.annotations["patchedstatus"] == "true"
    assert patched.spec.schedule == "*/1 * * * *"

    batch.delete_namespaced_cron_job("e2e-cj", ns)
    wait_until(lambda: [c.metadata.name for c in batch.list_namespaced_cron_job(
        ns, label_selector=f"{label}=true").items] == ["e2e-cj2"], what="e2e-cj deleted")
    batch.delete_collection_namespaced_cron_job(ns, label_selector=f"{label}=true")
    wait_until(lambda: not batch.list_namespaced_cron_job(ns, label_selector=f"{label}=true").items,
               what="collection deleted")


# ------------------------------------------------------------------ PodDisruptionBudget
def pdb(name: str, labels: dict | None = None, min_available: int = 1) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"foo": "bar"}}}}


@pytest.mark.conformance("PodDisruptionBudget: list and delete collection")
def test_pdb_list_and_deletecollection(cluster: Cluster, ns: str, api) -> None:
    policy = client.PolicyV1Api(api)
    for name in ("pdb-a", "pdb-b", "pdb-c"):
        policy.create_namespaced_pod_disruption_budget(ns, pdb(name, {"e2e": "pdb"}))
    policy.create_namespaced_pod_disruption_budget(ns, pdb("pdb-unlabelled"))
    listed = policy.list_namespaced_pod_disruption_budget(ns, label_selector="e2e=pdb")
    assert sorted(p.metadata.name for p in listed.items) == ["pdb-a", "pdb-b", "pdb-c"]
    policy.delete_collection_namespaced_pod_disruption_budget(ns, label_selector="e2e=pdb")
    wait_until(lambda: [p.metadata.name for p in policy.list_namespaced_pod_disruption_budget(ns).items] ==
               ["pdb-unlabelled"], what="only the unlabelled PDB left")


@pytest.mark.conformance("PodDisruptionBudget: create, update, patch, and delete object")
def test_pdb_create_update_patch_delete(cluster: Cluster, ns: str, api) -> None:
    policy = client.PolicyV1Api(api)
    created = policy.create_namespaced_pod_disruption_budget(ns, pdb("pdb-crud"))
    assert created.spec.min_available == 1

    def update() -> object:
        cur = policy.read_namespaced_pod_disruption_budget("pdb-crud", ns)
        cur.spec.selector = client.V1LabelSelector(match_labels={"foo": "baz"})
        try:
            return policy.replace_namespaced_pod_disruption_budget("pdb-crud", ns, cur)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    updated = wait_until(update, what="update")
    assert updated.spec.selector.match_labels == {"foo": "baz"}
    patched = policy.patch_namespaced_pod_disruption_budget("pdb-crud", ns, {"spec": {"minAvailable": 2}})
    assert patched.spec.min_available == 2
    got = policy.read_namespaced_pod_disruption_budget("pdb-crud", ns)
    assert got.spec.min_available == 2 and got.spec.selector.match_labels == {"foo": "baz"}
    policy.delete_namespaced_pod_disruption_budget("pdb-crud", ns)
    with pytest.raises(ApiException) as e:
        wait_until(lambda: policy.read_namespaced_pod_disruption_budget("pdb-crud", ns) and False, timeout=10)
    assert e.value.status == 404


@pytest.mark.conformance("PodDisruptionBudget: update and patch status")
def test_pdb_status_update_and_patch(cluster: Cluster, ns: str, api) -> None:
    policy = client.PolicyV1Api(api)
    core = client.CoreV1Api(api)
    policy.create_namespaced_pod_disruption_budget(ns, pdb("pdb-status"))
    core.create_namespaced_pod(ns, {"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "pod-0", "labels": {"foo": "bar"}},
                                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    wait_until(lambda: running_pods(cluster, ns, "foo=bar"), what="pod-0 running")
    wait_until(lambda: policy.read_namespaced_pod_disruption_budget_status("pdb-status", ns)
               .status.current_healthy == 1, what="the PDB observes its pod")

    def update() -> object:
        cur = policy.read_namespaced_pod_disruption_budget_status("pdb-status", ns)
        cur.status.disrupted_pods = {"pod-0": datetime.now(UTC).replace(microsecond=0)}
        try:
            return policy.replace_namespaced_pod_disruption_budget_status("pdb-status", ns, cur)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    assert "pod-0" in wait_until(update, what="status update").status.disrupted_pods
    assert "pod-0" in policy.read_namespaced_pod_disruption_budget_status("pdb-status", ns).status.disrupted_pods
    patched = policy.patch_namespaced_pod_disruption_budget_status("pdb-status", ns,
                                                                   {"status": {"disruptedPods": None}})
    assert not patched.status.disrupted_pods
    got = policy.read_namespaced_pod_disruption_budget("pdb-status", ns)
    assert not got.status.disrupted_pods and got.spec.min_available == 1

