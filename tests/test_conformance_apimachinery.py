"""Upstream's sig-api-machinery conformance behaviours, end to end through the official client:
Namespace patch/update/status/finalize, ResourceQuota lifecycles, object counts and scopes, watch
restarts and consistency, discovery, 406 for Table from a backend without one, strict metadata, and
list chunking whose continue token outlives the version it was issued at."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from conftest import Cluster, _make_cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from test_workloads_support import wait_until


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = cluster.api_client()
    yield c
    c.close()


def raw(api: client.ApiClient, method: str, path: str, body=None, headers: dict | None = None,
        query: list | None = None) -> tuple[int, dict]:
    """A request through the client's REST layer; returns (status, decoded body) even for errors."""
    method_, url, hdrs, data, _ = api.param_serialize(
        method, path, query_params=query or [], header_params={"Content-Type": "application/json", **(headers or {})},
        body=body, auth_settings=["BearerToken"])
    try:
        r = api.call_api(method_, url, header_params=hdrs, body=data)
        r.read()
        return r.status, json.loads(r.data or b"{}")
    except ApiException as e:
        return e.status, json.loads(e.body or "{}")


# ------------------------------------------------------------------ Namespace
@pytest.fixture
def new_ns(api) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = "e2e-ns-" + uuid.uuid4().hex[:6]
    core.create_namespace({"metadata": {"name": name, "labels": {"e2e": name}}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


@pytest.mark.conformance("Namespace patching")
def test_namespace_patching(api, new_ns: str) -> None:
    core = client.CoreV1Api(api)
    core.patch_namespace(new_ns, {"metadata": {"labels": {"testLabel": "testValue"}}})
    got = core.read_namespace(new_ns)
    assert got.metadata.labels["testLabel"] == "testValue" and got.metadata.labels["e2e"] == new_ns


@pytest.mark.conformance("Namespace, apply update to a namespace")
def test_namespace_update(api, new_ns: str) -> None:
    core = client.CoreV1Api(api)

    def update():
        ns = core.read_namespace(new_ns)
        ns.metadata.labels["e2e-ns-update"] = "updated"
        try:
            return core.replace_namespace(new_ns, ns)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    updated = wait_until(update, what="update without conflict")
    assert updated.metadata.labels["e2e-ns-update"] == "updated"
    assert core.read_namespace(new_ns).metadata.labels["e2e-ns-update"] == "updated"


@pytest.mark.conformance("Namespace, apply changes to a namespace status")
def test_namespace_status(api, new_ns: str) -> None:
    core = client.CoreV1Api(api)
    st = core.read_namespace_status(new_ns)
    assert st.status.phase == "Active"
    patched = core.patch_namespace_status(new_ns, {"status": {"conditions": [
        {"type": "StatusPatch", "status": "True", "reason": "E2E", "message": "Patched by an e2e test"}]}})
    cond = [c for c in patched.status.conditions if c.type == "StatusPatch"]
    assert cond and cond[0].reason == "E2E" and cond[0].message == "Patched by an e2e test"

    def update():
        ns = core.read_namespace_status(new_ns)
        ns.status.conditions.append(client.V1NamespaceCondition(
            type="StatusUpdate", status="True", reason="E2E", message="Updated by an e2e test"))
        try:
            return core.replace_namespace_status(new_ns, ns)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    updated = wait_until(update, what="status update")
    got = core.read_namespace_status(new_ns)
    for obj in (updated, got):
        types = {c.type: c for c in obj.status.conditions}
        assert types["StatusUpdate"].message == "Updated by an e2e test" and "StatusPatch" in types
        assert obj.status.phase == "Active"


@pytest.mark.conformance("Namespace, apply finalizer to a namespace")
def test_namespace_finalizer(api, new_ns: str) -> None:
    core = client.CoreV1Api(api)
    fake = "e2e.example.com/fakeFinalizer"
    ns = core.read_namespace(new_ns)
    ns.spec.finalizers = [*ns.spec.finalizers, fake]
    updated = core.replace_namespace_finalize(new_ns, ns)
    assert fake in updated.spec.finalizers
    assert fake in core.read_namespace(new_ns).spec.finalizers
    ns = core.read_namespace(new_ns)
    ns.spec.finalizers = [f for f in ns.spec.finalizers if f != fake]
    removed = core.replace_namespace_finalize(new_ns, ns)
    assert fake not in removed.spec.finalizers and "kubernetes" in removed.spec.finalizers
    assert fake not in core.read_namespace(new_ns).spec.finalizers


# ------------------------------------------------------------------ ResourceQuota
def quota(name: str, hard: dict, scopes: list | None = None, labels: dict | None = None) -> dict:
    spec: dict = {"hard": hard}
    if scopes:
        spec["scopes"] = scopes
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def used(core, ns: str, name: str) -> dict:
    return core.read_namespaced_resource_quota(name, ns).status.used or {}


def wait_used(core, ns: str, name: str, expected: dict, what: str = "") -> None:
    wait_until(lambda: all(used(core, ns, name).get(k) == v for k, v in expected.items()),
               what=what or f"used {expected}")


@pytest.mark.conformance("ResourceQuota, object count quota, resourcequotas")
def test_quota_counts_resourcequotas(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_resource_quota(ns, quota("test-quota", {"resourcequotas": "1"}))
    wait_until(lambda: (q := core.read_namespaced_resource_quota("test-quota", ns)).status.hard and q,
               what="status.hard")
    q = core.read_namespaced_resource_quota("test-quota", ns)
    assert q.status.hard == {"resourcequotas": "1"}
    wait_used(core, ns, "test-quota", {"resourcequotas": "1"})


def _count_scenario(core, ns: str, hard: dict, create, delete, counted: dict) -> None:
    """Create a quota, see its status; create an object, see it charged; delete it, see it released."""
    core.create_namespaced_resource_quota(ns, quota("test-quota", {**hard, "resourcequotas": "1"}))
    zero = {k: "0" for k in hard}
    wait_used(core, ns, "test-quota", {**zero, "resourcequotas": "1"}, what="initial usage")
    q = core.read_namespaced_resource_quota("test-quota", ns)
    assert q.status.hard == {**hard, "resourcequotas": "1"}
    create()
    wait_used(core, ns, "test-quota", {**zero, **counted, "resourcequotas": "1"}, what="usage charged")
    delete()
    wait_used(core, ns, "test-quota", {**zero, "resourcequotas": "1"}, what="usage released")


@pytest.mark.conformance("ResourceQuota, object count quota, secret")
def test_quota_counts_secrets(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    _count_scenario(core, ns, {"secrets": "10"},
                    lambda: core.create_namespaced_secret(ns, {"metadata": {"name": "test-secret"},
                                                               "data": {"a": "Yg=="}}),
                    lambda: core.delete_namespaced_secret("test-secret", ns), {"secrets": "1"})


@pytest.mark.conformance("ResourceQuota, object count quota, service")
def test_quota_counts_services(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)

    def create() -> None:
        core.create_namespaced_service(ns, {"metadata": {"name": "test-service"},
                                            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
        core.create_namespaced_service(ns, {"metadata": {"name": "test-service-np"},
                                            "spec": {"type": "NodePort", "ports": [{"port": 80}],
                                                     "selector": {"a": "b"}}})

    def delete() -> None:
        core.delete_namespaced_service("test-service", ns)
        core.delete_namespaced_service("test-service-np", ns)
    _count_scenario(core, ns, {"services": "10", "services.nodeports": "1"}, create, delete,
                    {"services": "2", "services.nodeports": "1"})


@pytest.mark.conformance("ResourceQuota, object count quota, replicaSet")
def test_quota_counts_replicasets(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    rs = {"metadata": {"name": "test-rs"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"name": "test-rs"}},
        "template": {"metadata": {"labels": {"name": "test-rs"}},
                     "spec": {"containers": [{"name": "main", "image": "nginx"}]}}}}
    _count_scenario(core, ns, {"count/replicasets.apps": "5"},
                    lambda: apps.create_namespaced_replica_set(ns, rs),
                    lambda: apps.delete_namespaced_replica_set("test-rs", ns), {"count/replicasets.apps": "1"})


@pytest.mark.conformance("ResourceQuota, object count quota, replicationController")
def test_quota_counts_replicationcontrollers(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    rc = {"metadata": {"name": "test-rc"}, "spec": {
        "replicas": 0, "selector": {"name": "test-rc"},
        "template": {"metadata": {"labels": {"name": "test-rc"}},
                     "spec": {"containers": [{"name": "main", "image": "nginx"}]}}}}
    _count_scenario(core, ns, {"replicationcontrollers": "5"},
                    lambda: core.create_namespaced_replication_controller(ns, rc),
                    lambda: core.delete_namespaced_replication_controller("test-rc", ns),
                    {"replicationcontrollers": "1"})


@pytest.mark.conformance("ResourceQuota, quota scope, Terminating and NotTerminating scope")
def test_quota_terminating_scopes(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    hard = {"pods": "5", "requests.cpu": "1", "requests.memory": "500Mi", "limits.cpu": "2", "limits.memory": "1Gi"}
    core.create_namespaced_resource_quota(ns, quota("quota-terminating", hard, ["Terminating"]))
    core.create_namespaced_resource_quota(ns, quota("quota-not-terminating", hard, ["NotTerminating"]))
    zero = {k: "0" for k in hard}
    wait_used(core, ns, "quota-terminating", zero)
    wait_used(core, ns, "quota-not-terminating", zero)
    charged = {"pods": "1", "requests.cpu": "500m", "requests.memory": "200Mi", "limits.cpu": "1",
               "limits.memory": "400Mi"}

    def pod(name: str, deadline: int | None = None) -> dict:
        spec: dict = {"containers": [{"name": "main", "image": "pause", "resources": {
            "requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "400Mi"}}}]}
        if deadline is not None:
            spec["activeDeadlineSeconds"] = deadline
        return {"metadata": {"name": name}, "spec": spec}

    core.create_namespaced_pod(ns, pod("test-pod"))
    wait_used(core, ns, "quota-not-terminating", charged, what="long-running pod charged to NotTerminating")
    assert used(core, ns, "quota-terminating") == zero
    core.delete_namespaced_pod("test-pod", ns, grace_period_seconds=0)
    wait_used(core, ns, "quota-not-terminating", zero, what="released from NotTerminating")

    core.create_namespaced_pod(ns, pod("terminating-pod", deadline=3600))
    wait_used(core, ns, "quota-terminating", charged, what="pod with a deadline charged to Terminating")
    assert used(core, ns, "quota-not-terminating") == zero
    core.delete_namespaced_pod("terminating-pod", ns, grace_period_seconds=0)
    wait_used(core, ns, "quota-terminating", zero, what="released from Terminating")


@pytest.mark.conformance("ResourceQuota, update and delete")
def test_quota_update_and_delete(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_resource_quota(ns, quota("test-quota", {"cpu": "1", "memory": "500Mi"}))

    def update():
        q = core.read_namespaced_resource_quota("test-quota", ns)
        q.spec.hard = {"cpu": "2", "memory": "1Gi"}
        try:
            return core.replace_namespaced_resource_quota("test-quota", ns, q)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    updated = wait_until(update, what="update")
    assert updated.spec.hard == {"cpu": "2", "memory": "1Gi"}
    assert core.read_namespaced_resource_quota("test-quota", ns).spec.hard == {"cpu": "2", "memory": "1Gi"}
    core.delete_namespaced_resource_quota("test-quota", ns)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_resource_quota("test-quota", ns)
    assert e.value.status == 404


@pytest.mark.conformance("ResourceQuota, manage lifecycle of a ResourceQuota")
def test_quota_lifecycle(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    label = "e2e-rq-" + uuid.uuid4().hex[:6]
    core.create_namespaced_resource_quota(ns, quota("e2e-rq", {"cpu": "1", "memory": "500Mi"},
                                                    labels={label: "true"}))
    listed = core.list_resource_quota_for_all_namespaces(label_selector=f"{label}=true")
    assert [(q.metadata.namespace, q.metadata.name) for q in listed.items] == [(ns, "e2e-rq")]
    patched = core.patch_namespaced_resource_quota("e2e-rq", ns, {
        "metadata": {"labels": {"rq": "patched"}}, "spec": {"hard": {"cpu": "2", "memory": "1Gi"}}})
    assert patched.metadata.labels["rq"] == "patched" and patched.spec.hard == {"cpu": "2", "memory": "1Gi"}
    core.delete_collection_namespaced_resource_quota(ns, label_selector=f"{label}=true")
    wait_until(lambda: not core.list_namespaced_resource_quota(ns, label_selector=f"{label}=true").items,
               what="collection deleted")


@pytest.mark.conformance("ResourceQuota, apply changes to a ResourceQuota status")
def test_quota_status(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    first = {"cpu": "500m", "memory": "500Mi"}
    core.create_namespaced_resource_quota(ns, quota("e2e-rq-status", first))
    wait_until(lambda: core.read_namespaced_resource_quota("e2e-rq-status", ns).status.hard == first,
               what="status.hard mirrors spec.hard")

    def update_status(hard: dict):
        q = core.read_namespaced_resource_quota_status("e2e-rq-status", ns)
        q.status.hard = hard
        try:
            return core.replace_namespaced_resource_quota_status("e2e-rq-status", ns, q)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    other = {"cpu": "600m", "memory": "600Mi"}
    updated = wait_until(lambda: update_status(other), what="status update")
    assert updated.status.hard == other and updated.spec.hard == first
    # the quota controller puts status.hard back to spec.hard
    wait_until(lambda: core.read_namespaced_resource_quota("e2e-rq-status", ns).status.hard == first,
               what="status.hard reconciled to spec.hard")

    second = {"cpu": "1", "memory": "1Gi"}
    patched = core.patch_namespaced_resource_quota("e2e-rq-status", ns, {"spec": {"hard": second}})
    assert patched.spec.hard == second
    wait_until(lambda: core.read_namespaced_resource_quota("e2e-rq-status", ns).status.hard == second,
               what="status.hard follows the new spec.hard")

    patched = core.patch_namespaced_resource_quota_status("e2e-rq-status", ns,
                                                          {"status": {"hard": {"cpu": "2", "memory": "2Gi"}}})
    assert patched.status.hard == {"cpu": "2", "memory": "2Gi"} and patched.spec.hard == second
    wait_until(lambda: core.read_namespaced_resource_quota_status("e2e-rq-status", ns).status.hard == second,
               what="status.hard reconciled again")
    got = core.read_namespaced_resource_quota_status("e2e-rq-status", ns)
    assert got.status.hard == got.spec.hard == second

    repatched = core.patch_namespaced_resource_quota_status("e2e-rq-status", ns, {
        "spec": {"hard": {"cpu": "5", "memory": "5Gi"}}, "status": {"hard": {"cpu": "3", "memory": "3Gi"}}})
    assert repatched.spec.hard == second
    wait_until(lambda: core.read_namespaced_resource_quota("e2e-rq-status", ns).status.hard == second,
               what="status.hard back to the unchanged spec")
    assert core.read_namespaced_resource_quota("e2e-rq-status", ns).spec.hard == second


# ------------------------------------------------------------------ watch
@pytest.mark.conformance("watch-configmaps-closed-and-restarted")
def test_watch_restarted_from_last_seen_version(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    label = "watch-closed-and-restarted"
    rv = core.list_namespaced_config_map(ns, label_selector=f"watch-this-configmap={label}").metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "e2e-watch-test-configmap",
                                                        "labels": {"watch-this-configmap": label}}})
    core.patch_namespaced_config_map("e2e-watch-test-configmap", ns, {"data": {"mutation": "1"}})
    w = watch.Watch()
    seen = []
    for e in w.stream(core.list_namespaced_config_map, ns, label_selector=f"watch-this-configmap={label}",
                      resource_version=rv, timeout_seconds=10):
        seen.append((e["type"], (e["object"].data or {}).get("mutation"), e["object"].metadata.resource_version))
        if len(seen) == 2:
            w.stop()
            break
    assert [s[:2] for s in seen] == [("ADDED", None), ("MODIFIED", "1")]
    last = seen[-1][2]
    # while no watch is open: another change, then the deletion
    core.patch_namespaced_config_map("e2e-watch-test-configmap", ns, {"data": {"mutation": "2"}})
    core.delete_namespaced_config_map("e2e-watch-test-configmap", ns)
    later = []
    for e in w.stream(core.list_namespaced_config_map, ns, label_selector=f"watch-this-configmap={label}",
                      resource_version=last, timeout_seconds=10):
        later.append((e["type"], (e["object"].data or {}).get("mutation")))
        if e["type"] == "DELETED":
            w.stop()
            break
    assert later == [("MODIFIED", "2"), ("DELETED", "2")]


@pytest.mark.conformance("watch-consistency")
def test_concurrent_watches_see_the_same_order(cluster: Cluster, ns: str, api) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    stop = threading.Event()
    errors: list[Exception] = []

    def produce() -> None:
        """Writes on a background thread: creates, updates and deletes of configmaps."""
        i = 0
        while not stop.is_set() and i < 300:
            name = f"cm-{i % 7}"
            try:
                if i % 3 == 0:
                    core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
                elif i % 3 == 1:
                    core.patch_namespaced_config_map(name, ns, {"data": {"i": str(i)}})
                else:
                    core.delete_namespaced_config_map(name, ns)
            except ApiException as e:
                if e.status not in (404, 409):
                    errors.append(e)
            i += 1
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()

    def collect(start: str, n: int) -> list[str]:
        w = watch.Watch()
        out = []
        for e in w.stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=30):
            out.append(e["object"].metadata.resource_version)
            if len(out) == n:
                w.stop()
                break
        return out
    try:
        first = collect(rv, 60)
        assert len(first) == 60
        # a watch opened at each of a few of the first watch's events sees what came after, in the same order
        for i in (0, 10, 25, 40):
            assert collect(first[i], 19) == first[i + 1:i + 20]
    finally:
        stop.set()
        producer.join(30)
    assert not errors
    assert [int(r) for r in first] == sorted(int(r) for r in first)


# ------------------------------------------------------------------ discovery
EXPECTED_RESOURCES = {
    "apps": "deployments", "batch": "jobs", "autoscaling": "horizontalpodautoscalers",
    "policy": "poddisruptionbudgets", "rbac.authorization.k8s.io": "roles", "networking.k8s.io": "ingresses",
    "storage.k8s.io": "storageclasses", "coordination.k8s.io": "leases", "discovery.k8s.io": "endpointslices",
    "events.k8s.io": "events", "scheduling.k8s.io": "priorityclasses", "node.k8s.io": "runtimeclasses",
    "certificates.k8s.io": "certificatesigningrequests", "authentication.k8s.io": "tokenreviews",
    "authorization.k8s.io": "subjectaccessreviews", "admissionregistration.k8s.io": "validatingwebhookconfigurations",
    "apiextensions.k8s.io": "customresourcedefinitions",
}


@pytest.mark.conformance("Discovery, confirm the groupVersion and a resource from each apiGroup")
def test_discovery_group_versions_and_resources(cluster: Cluster, api) -> None:
    groups = client.ApisApi(api).get_api_versions().groups
    names = {g.name for g in groups}
    assert {"apps", "batch", "policy", "rbac.authorization.k8s.io"} <= names
    for g in groups:
        for v in g.versions:
            status, rl = raw(api, "GET", f"/apis/{v.group_version}")
            assert status == 200 and rl["kind"] == "APIResourceList", v.group_version
            assert rl["groupVersion"] == v.group_version
            resources = [r["name"] for r in rl["resources"]]
            assert resources, f"no resources in {v.group_version}"
            if g.name in EXPECTED_RESOURCES and v.group_version == g.preferred_version.group_version:
                assert EXPECTED_RESOURCES[g.name] in resources, v.group_version


@pytest.mark.conformance("Discovery, confirm the PreferredVersion for each api group")
def test_discovery_preferred_versions(cluster: Cluster, api) -> None:
    groups = client.ApisApi(api).get_api_versions().groups
    assert groups
    for g in groups:
        if g.name.endswith(".example.com"):
            continue
        status, group = raw(api, "GET", f"/apis/{g.name}/")
        assert status == 200 and group["kind"] == "APIGroup" and group["name"] == g.name
        preferred = group["preferredVersion"]["groupVersion"]
        assert preferred in [v["groupVersion"] for v in group["versions"]], g.name
        assert preferred == g.preferred_version.group_version
        assert group["preferredVersion"]["version"] == preferred.split("/")[1]


# ------------------------------------------------------------------ metadata, field validation
@pytest.mark.conformance("API metadata HTTP return")
def test_table_from_a_backend_without_tables_is_406(cluster: Cluster, api) -> None:
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
           "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}}
    status, body = raw(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", sar,
                       {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert status == 406 and body["code"] == 406 and body["reason"] == "NotAcceptable"
    # the same review as plain JSON is served
    status, body = raw(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", sar)
    assert status == 201 and body["status"]["allowed"] is True


@pytest.mark.conformance("Server side field validation, typed unknown metadata")
def test_strict_field_validation_rejects_unknown_metadata(cluster: Cluster, ns: str, api) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "my-dep", "unknownMeta": "foo", "labels": {"app": "nginx"}},
           "spec": {"selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}
    status, body = raw(api, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep,
                       query=[("fieldValidation", "Strict")])
    assert status == 400 and 'unknown field "metadata.unknownMeta"' in body["message"]
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(api).read_namespaced_deployment("my-dep", ns)
    assert e.value.status == 404


# ------------------------------------------------------------------ chunking
@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server keeping only 300 events, so that a few hundred writes compact a list's version away."""
    c = _make_cluster(tmp_path_factory, ["--default-watch-cache-size", "300"])
    c.start()
    yield c
    c.stop()


@pytest.mark.conformance("API Chunking, server should support continue listing from the last key even if the "
                         "original version has been compacted away")
def test_chunking_continue_after_compaction(small_history: Cluster) -> None:
    api = small_history.api_client()
    core = client.CoreV1Api(api)
    ns = "chunking"
    core.create_namespace({"metadata": {"name": ns}})
    for i in range(400):
        core.create_namespaced_pod_template(ns, {"metadata": {"name": f"template-{i:04d}"}, "template": {
            "spec": {"containers": [{"name": "test", "image": "nginx"}]}}})
    first = core.list_namespaced_pod_template(ns, limit=40)
    assert len(first.items) == 40 and first.metadata.remaining_item_count == 360
    token = first.metadata._continue
    assert token

    # writes elsewhere until the first page's version is compacted away and the token expires
    core.create_namespaced_config_map(ns, {"metadata": {"name": "churn"}})
    expired = None
    for i in range(20):
        for j in range(50):
            core.patch_namespaced_config_map("churn", ns, {"data": {"n": f"{i}-{j}"}})
        status, body = raw(api, "GET", f"/api/v1/namespaces/{ns}/podtemplates",
                           query=[("limit", "40"), ("continue", token)])
        if status == 410:
            expired = body
            break
        assert status == 200
    assert expired is not None, "the continue token never expired"
    assert expired["reason"] == "Expired"
    inconsistent = expired["metadata"]["continue"]
    assert inconsistent and inconsistent != token

    second = core.list_namespaced_pod_template(ns, limit=40, _continue=inconsistent)
    assert len(second.items) == 40 and second.metadata.remaining_item_count == 320
    assert second.items[0].metadata.name == "template-0040"
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    rv = second.metadata.resource_version
    found = 80
    page = second
    while page.metadata._continue:
        page = core.list_namespaced_pod_template(ns, limit=40, _continue=page.metadata._continue)
        assert len(page.items) <= 40 and page.metadata.resource_version == rv
        found += len(page.items)
        if page.metadata._continue:
            assert page.metadata.remaining_item_count == 400 - found
    assert found == 400
    api.close()
