"""Upstream's sig-node, sig-auth, sig-instrumentation and sig-scheduling conformance behaviours that
the API decides, end to end through the official client: ConfigMap, Secret, PodTemplate, Lease,
Node, Event, ServiceAccount, CertificateSigningRequest, LimitRange, RuntimeClass and PriorityClass
operations and admission, pod QoS, and (on a cluster of simulated nodes, whose kubelets run pods
without containers) pod lifecycles, activeDeadlineSeconds, RuntimeClass scheduling and preemption."""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from conftest import Cluster, _make_cluster
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_conformance_network_api import ALL_VERBS, Watcher, assert_discovered, unique
from test_endpoints import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = cluster.api_client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def v1(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def status_of(fn, *args, **kwargs) -> int:
    """The HTTP status of a call expected to fail."""
    with pytest.raises(ApiException) as e:
        fn(*args, **kwargs)
    return e.value.status


def gone(fn, *args) -> bool:
    """Whether reading the object answers 404."""
    try:
        fn(*args)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_body(name: str, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.52",
                                     "args": ["pause"]}], **spec}}


# ------------------------------------------------------------------ ConfigMap, Secret
@pytest.mark.conformance("ConfigMap, with empty-key")
def test_configmap_with_empty_key_is_rejected(v1: client.CoreV1Api, ns: str) -> None:
    body = {"metadata": {"name": "configmap-test-emptykey"}, "data": {"": "value-1"}}
    assert status_of(v1.create_namespaced_config_map, ns, body) == 422
    assert v1.list_namespaced_config_map(ns, field_selector="metadata.name=configmap-test-emptykey").items == []


@pytest.mark.conformance("ConfigMap lifecycle")
def test_configmap_lifecycle(v1: client.CoreV1Api, ns: str) -> None:
    label = f"test-configmap-static={ns}"
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "test-configmap",
                                                      "labels": {"test-configmap-static": ns}},
                                         "data": {"valueName": "value"}})
    v1.patch_namespaced_config_map("test-configmap", ns, {"metadata": {"labels": {"test-configmap": "patched"}},
                                                         "data": {"valueName": "value1"}})
    got = v1.read_namespaced_config_map("test-configmap", ns)
    assert got.data == {"valueName": "value1"} and got.metadata.labels["test-configmap"] == "patched"
    found = v1.list_config_map_for_all_namespaces(label_selector=label).items
    assert [(c.metadata.name, c.data["valueName"], c.metadata.labels["test-configmap"]) for c in found] == [
        ("test-configmap", "value1", "patched")]
    v1.delete_collection_namespaced_config_map(ns, label_selector=label)
    assert v1.list_config_map_for_all_namespaces(label_selector=label).items == []
    assert status_of(v1.read_namespaced_config_map, "test-configmap", ns) == 404


@pytest.mark.conformance("Secrets, with empty-key")
def test_secret_with_empty_key_is_rejected(v1: client.CoreV1Api, ns: str) -> None:
    body = {"metadata": {"name": "secret-emptykey-test"}, "data": {"": base64.b64encode(b"value-1").decode()}}
    assert status_of(v1.create_namespaced_secret, ns, body) == 422
    assert v1.list_namespaced_secret(ns, field_selector="metadata.name=secret-emptykey-test").items == []


@pytest.mark.conformance("Secret patching")
def test_secret_patching(v1: client.CoreV1Api, ns: str) -> None:
    label = f"testsecret-constant={ns}"
    v1.create_namespaced_secret(ns, {"metadata": {"name": "test-secret", "labels": {"testsecret-constant": ns}},
                                     "type": "Opaque", "data": {"key": base64.b64encode(b"value").decode()}})
    found = v1.list_secret_for_all_namespaces(label_selector=label).items
    assert [s.metadata.name for s in found] == ["test-secret"]
    patched_value = base64.b64encode(b"value1").decode()
    v1.patch_namespaced_secret("test-secret", ns, {"metadata": {"labels": {"testsecret": "true"}},
                                                  "data": {"key": patched_value}})
    got = v1.read_namespaced_secret("test-secret", ns)
    assert got.data == {"key": patched_value} and got.metadata.labels["testsecret"] == "true"
    v1.delete_collection_namespaced_secret(ns, label_selector=label)
    assert all(s.metadata.name != "test-secret" for s in v1.list_secret_for_all_namespaces(
        label_selector=label).items)
    assert status_of(v1.read_namespaced_secret, "test-secret", ns) == 404


# ------------------------------------------------------------------ PodTemplate
def pod_template(name: str, labels: dict) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}


@pytest.mark.conformance("PodTemplate lifecycle")
def test_podtemplate_lifecycle(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_pod_template(ns, pod_template("nginx-pod-template", {"podtemplate-static": "true"}))
    v1.patch_namespaced_pod_template("nginx-pod-template", ns, {"metadata": {"labels": {"podtemplate": "patched"}}})
    got = v1.read_namespaced_pod_template("nginx-pod-template", ns)
    assert got.metadata.labels == {"podtemplate-static": "true", "podtemplate": "patched"}
    found = v1.list_namespaced_pod_template(ns, label_selector="podtemplate-static=true").items
    assert [(t.metadata.name, t.metadata.labels["podtemplate"]) for t in found] == [("nginx-pod-template", "patched")]
    v1.delete_namespaced_pod_template("nginx-pod-template", ns)
    assert status_of(v1.read_namespaced_pod_template, "nginx-pod-template", ns) == 404
    assert v1.list_namespaced_pod_template(ns, label_selector="podtemplate-static=true").items == []


@pytest.mark.conformance("PodTemplate, delete a collection")
def test_podtemplate_delete_collection(v1: client.CoreV1Api, ns: str) -> None:
    for i in range(3):
        v1.create_namespaced_pod_template(ns, pod_template(f"podtemplate-{i}", {"podtemplate-set": "true"}))
    v1.create_namespaced_pod_template(ns, pod_template("other", {"podtemplate-set": "false"}))
    assert len(v1.list_namespaced_pod_template(ns, label_selector="podtemplate-set=true").items) == 3
    v1.delete_collection_namespaced_pod_template(ns, label_selector="podtemplate-set=true")
    assert v1.list_namespaced_pod_template(ns, label_selector="podtemplate-set=true").items == []
    assert [t.metadata.name for t in v1.list_namespaced_pod_template(ns).items] == ["other"]


@pytest.mark.conformance("PodTemplate, replace")
def test_podtemplate_replace(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_pod_template(ns, pod_template("podtemplate-replace", {}))
    cur = v1.read_namespaced_pod_template("podtemplate-replace", ns)
    cur.metadata.annotations = {"updated": "true"}
    replaced = v1.replace_namespaced_pod_template("podtemplate-replace", ns, cur)
    assert replaced.metadata.annotations == {"updated": "true"}
    assert v1.read_namespaced_pod_template("podtemplate-replace", ns).metadata.annotations == {"updated": "true"}


# ------------------------------------------------------------------ Lease, Node
@pytest.mark.conformance("lease API should be available")
def test_lease_api(api: client.ApiClient, ns: str) -> None:
    coord = client.CoordinationV1Api(api)
    spec = {"holderIdentity": "holder", "leaseDurationSeconds": 30, "acquireTime": micro_now(),
            "renewTime": micro_now()}
    coord.create_namespaced_lease(ns, {"metadata": {"name": "lease"}, "spec": spec})
    got = coord.read_namespaced_lease("lease", ns)
    assert got.spec.holder_identity == "holder" and got.spec.lease_duration_seconds == 30
    got.spec.holder_identity = "holder2"
    got.spec.lease_duration_seconds = 50
    coord.replace_namespaced_lease("lease", ns, got)
    got = coord.read_namespaced_lease("lease", ns)
    assert (got.spec.holder_identity, got.spec.lease_duration_seconds) == ("holder2", 50)
    coord.patch_namespaced_lease("lease", ns, {"spec": {"holderIdentity": "holder3", "leaseDurationSeconds": 60,
                                                        "leaseTransitions": 5}})
    got = coord.read_namespaced_lease("lease", ns)
    assert (got.spec.holder_identity, got.spec.lease_duration_seconds, got.spec.lease_transitions) == (
        "holder3", 60, 5)
    coord.create_namespaced_lease(ns, {"metadata": {"name": "lease2", "labels": {"deletecollection": "true"}},
                                       "spec": spec})
    assert sorted(x.metadata.name for x in coord.list_namespaced_lease(ns).items) == ["lease", "lease2"]
    coord.delete_collection_namespaced_lease(ns, label_selector="deletecollection=true")
    assert [x.metadata.name for x in coord.list_namespaced_lease(ns).items] == ["lease"]
    coord.delete_namespaced_lease("lease", ns)
    assert status_of(coord.read_namespaced_lease, "lease", ns) == 404


@pytest.mark.conformance("Node, resource lifecycle")
def test_node_lifecycle(v1: client.CoreV1Api) -> None:
    name = unique("e2e-fake-node")
    try:
        v1.create_node({"metadata": {"name": name}, "status": {"phase": "Running"}})
        assert v1.read_node(name).metadata.name == name
        v1.patch_node(name, {"metadata": {"labels": {name: "patched"}}})
        assert v1.read_node(name).metadata.labels[name] == "patched"
        found = v1.list_node(label_selector=f"{name}=patched").items
        assert [n.metadata.name for n in found] == [name]
        cur = v1.read_node(name)
        cur.metadata.labels[name] = "updated"
        assert v1.replace_node(name, cur).metadata.labels[name] == "updated"
        assert v1.read_node(name).metadata.labels[name] == "updated"
        v1.delete_node(name)
        wait_for(lambda: v1.list_node(field_selector=f"metadata.name={name}").items == [])
        assert status_of(v1.read_node, name) == 404
    finally:
        try:
            v1.delete_node(name)
        except ApiException:
            pass


# ------------------------------------------------------------------ Events
def core_event(name: str, ns: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": "test-pod"},
            "reason": "Testing", "message": "This is a test event", "type": "Normal", "count": 1,
            "source": {"component": "test-component"}}


@pytest.mark.conformance("Event, manage lifecycle of an Event")
def test_core_event_lifecycle(v1: client.CoreV1Api, ns: str) -> None:
    label = f"testevent-constant={ns}"
    v1.create_namespaced_event(ns, core_event("event-test", ns, {"testevent-constant": ns}))
    found = v1.list_event_for_all_namespaces(label_selector=label).items
    assert [e.metadata.name for e in found] == ["event-test"]
    v1.patch_namespaced_event("event-test", ns, {"message": "This is a test event - patched"})
    got = v1.read_namespaced_event("event-test", ns)
    assert got.message == "This is a test event - patched"
    now = micro_now()
    got.series = {"count": 100, "lastObservedTime": now}
    v1.replace_namespaced_event("event-test", ns, got)
    got = v1.read_namespaced_event("event-test", ns)
    assert got.series.count == 100 and got.series.last_observed_time is not None
    assert got.message == "This is a test event - patched"
    v1.delete_namespaced_event("event-test", ns)
    assert v1.list_event_for_all_namespaces(label_selector=label).items == []
    assert status_of(v1.read_namespaced_event, "event-test", ns) == 404


@pytest.mark.conformance("Event, delete a collection")
def test_core_event_delete_collection(v1: client.CoreV1Api, ns: str) -> None:
    label = f"testevent-set={ns}"
    for i in range(3):
        v1.create_namespaced_event(ns, core_event(f"event-test-{i}", ns, {"testevent-set": ns}))
    v1.create_namespaced_event(ns, core_event("unlabelled", ns))
    assert len(v1.list_namespaced_event(ns, label_selector=label).items) == 3
    v1.delete_collection_namespaced_event(ns, label_selector=label)
    assert v1.list_namespaced_event(ns, label_selector=label).items == []
    assert [e.metadata.name for e in v1.list_namespaced_event(ns).items] == ["unlabelled"]


def new_event(name: str, ns: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "labels": labels or {}},
            "eventTime": micro_now(), "reportingController": "test-controller", "reportingInstance": "test-node",
            "action": "Do", "reason": "Test", "note": "This is a test event", "type": "Normal",
            "regarding": {"kind": "Pod", "namespace": ns, "name": "test-pod"}}


@pytest.mark.conformance("New Event resource lifecycle, testing a single event")
def test_events_api_single_event(api: client.ApiClient, ns: str) -> None:
    ev = client.EventsV1Api(api)
    ev.create_namespaced_event(ns, new_event("event-test", ns, {"testevent-constant": "true"}))
    got = ev.read_namespaced_event("event-test", ns)
    assert got.note == "This is a test event" and got.reporting_controller == "test-controller"
    # the same event seen through the core API
    assert client.CoreV1Api(api).read_namespaced_event("event-test", ns).message == "This is a test event"
    # upstream's e2e patches the series (the note is immutable through events.k8s.io, as upstream)
    ev.patch_namespaced_event("event-test", ns, {"series": {"count": 2, "lastObservedTime": micro_now()}})
    got = ev.read_namespaced_event("event-test", ns)
    assert got.series.count == 2 and got.note == "This is a test event"
    assert status_of(ev.patch_namespaced_event, "event-test", ns, {"note": "changed"}) == 422
    got.series = {"count": 100, "lastObservedTime": micro_now()}
    ev.replace_namespaced_event("event-test", ns, got)
    got = ev.read_namespaced_event("event-test", ns)
    assert got.series.count == 100 and got.note == "This is a test event"
    ev.delete_namespaced_event("event-test", ns)
    # listing all events (by name: the client cannot decode core events without eventTime, which
    # upstream serves as null too, such as the kubelet's)
    assert all(e.metadata.namespace != ns
               for e in ev.list_event_for_all_namespaces(field_selector="metadata.name=event-test").items)
    assert status_of(ev.read_namespaced_event, "event-test", ns) == 404


@pytest.mark.conformance("New Event resource lifecycle, testing a list of events")
def test_events_api_delete_collection(api: client.ApiClient, ns: str) -> None:
    ev = client.EventsV1Api(api)
    label = f"testevent-set={ns}"
    for i in range(3):
        ev.create_namespaced_event(ns, new_event(f"event-test-{i}", ns, {"testevent-set": ns}))
    assert len(ev.list_event_for_all_namespaces(label_selector=label).items) == 3
    ev.delete_collection_namespaced_event(ns, label_selector=label)
    assert ev.list_event_for_all_namespaces(label_selector=label).items == []
    assert ev.list_namespaced_event(ns).items == []


# ------------------------------------------------------------------ ServiceAccount
@pytest.mark.conformance("ServiceAccount lifecycle test")
def test_serviceaccount_lifecycle(v1: client.CoreV1Api, ns: str) -> None:
    listed = v1.list_namespaced_service_account(ns, label_selector="test-serviceaccount-static=true")
    w = Watcher(v1.list_namespaced_service_account, ns, label_selector="test-serviceaccount-static=true",
                resource_version=listed.metadata.resource_version)
    try:
        v1.create_namespaced_service_account(ns, {"metadata": {"name": "testserviceaccount",
                                                               "labels": {"test-serviceaccount-static": "true"}}})
        w.wait(lambda t, o: t == "ADDED" and o.metadata.labels.get("test-serviceaccount-static") == "true",
               "service account added")
        patched = v1.patch_namespaced_service_account("testserviceaccount", ns,
                                                      {"automountServiceAccountToken": False})
        assert patched.automount_service_account_token is False
        w.wait(lambda t, o: t == "MODIFIED" and o.automount_service_account_token is False, "patched")
        found = v1.list_service_account_for_all_namespaces(label_selector="test-serviceaccount-static=true").items
        assert [(s.metadata.namespace, s.automount_service_account_token) for s in found] == [(ns, False)]
        v1.delete_collection_namespaced_service_account(ns, label_selector="test-serviceaccount-static=true")
        w.wait(lambda t, o: t == "DELETED" and o.metadata.name == "testserviceaccount", "deleted")
    finally:
        w.stop()


@pytest.mark.conformance("ServiceAccount, update a ServiceAccount")
def test_serviceaccount_update(v1: client.CoreV1Api, ns: str) -> None:
    created = v1.create_namespaced_service_account(ns, {"metadata": {"name": "e2e-sa-update"}})
    assert created.automount_service_account_token is None
    created.automount_service_account_token = True
    updated = v1.replace_namespaced_service_account("e2e-sa-update", ns, created)
    assert updated.automount_service_account_token is True
    assert v1.read_namespaced_service_account("e2e-sa-update", ns).automount_service_account_token is True


# ------------------------------------------------------------------ CertificateSigningRequest
def csr_pem() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e.example.com")])).sign(key, hashes.SHA256())
    return req.public_bytes(serialization.Encoding.PEM).decode()


def self_signed_cert_pem() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.conformance("CertificateSigningRequest API")
def test_csr_api_operations(api: client.ApiClient) -> None:
    assert_discovered(api, "certificates.k8s.io", "v1", {
        "certificatesigningrequests": ALL_VERBS, "certificatesigningrequests/approval": {"get", "update", "patch"},
        "certificatesigningrequests/status": {"get", "update", "patch"}})
    cert = client.CertificatesV1Api(api)
    label = uuid.uuid4().hex
    signer = f"example.com/e2e-{label[:8]}"
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "e2e-example-csr-", "labels": {"e2e-run": label}},
            "spec": {"request": base64.b64encode(csr_pem().encode()).decode(), "signerName": signer,
                     "usages": ["digital signature", "key encipherment", "server auth"]}}
    names = [cert.create_certificate_signing_request(body).metadata.name for _ in range(3)]
    try:
        name = names[0]
        got = cert.read_certificate_signing_request(name)
        assert got.spec.signer_name == signer and got.spec.usages == body["spec"]["usages"]
        listed = cert.list_certificate_signing_request(label_selector=f"e2e-run={label}")
        assert sorted(c.metadata.name for c in listed.items) == sorted(names)
        w = Watcher(cert.list_certificate_signing_request, label_selector=f"e2e-run={label}",
                    resource_version=listed.metadata.resource_version)
        try:
            p = cert.patch_certificate_signing_request(name, {"metadata": {"annotations": {"patched": "true"}}})
            assert p.metadata.annotations["patched"] == "true"
            cur = cert.read_certificate_signing_request(name)
            cur.metadata.annotations["updated"] = "true"
            u = cert.replace_certificate_signing_request(name, cur)
            assert u.metadata.annotations == {"patched": "true", "updated": "true"}
            w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.annotations or {}).get("updated") == "true",
                   "csr updated")
        finally:
            w.stop()

        # /approval: get, patch, update
        assert cert.read_certificate_signing_request_approval(name).metadata.name == name
        ap = cert.patch_certificate_signing_request_approval(name, {"status": {"conditions": [
            {"type": "ApprovalPatch", "status": "True", "reason": "e2e"}]}})
        assert [c.type for c in ap.status.conditions] == ["ApprovalPatch"]
        cur = cert.read_certificate_signing_request_approval(name)
        cur.status.conditions.append(client.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="E2E", message="Set from an e2e test"))
        ap = cert.replace_certificate_signing_request_approval(name, cur)
        assert {c.type for c in ap.status.conditions} == {"ApprovalPatch", "Approved"}

        # /status: get, patch, update
        assert cert.read_certificate_signing_request_status(name).metadata.name == name
        st = cert.patch_certificate_signing_request_status(name, {"metadata": {"annotations": {"patchedstatus": "true"}},
                                                                  "status": {"conditions": [
                                                                      {"type": "StatusPatch", "status": "True",
                                                                       "reason": "e2e"}]}})
        assert "StatusPatch" in {c.type for c in st.status.conditions}
        assert st.metadata.annotations["patchedstatus"] == "true"
        cur = cert.read_certificate_signing_request_status(name)
        pem = self_signed_cert_pem()
        cur.status.certificate = base64.b64encode(pem.encode()).decode()
        st = cert.replace_certificate_signing_request_status(name, cur)
        assert base64.b64decode(st.status.certificate).decode() == pem
        assert cert.read_certificate_signing_request(name).spec.signer_name == signer

        cert.delete_certificate_signing_request(name)
        assert status_of(cert.read_certificate_signing_request, name) == 404
        cert.delete_collection_certificate_signing_request(label_selector=f"e2e-run={label}")
        assert cert.list_certificate_signing_request(label_selector=f"e2e-run={label}").items == []
    finally:
        for n in names:
            try:
                cert.delete_certificate_signing_request(n)
            except ApiException:
                pass


# ------------------------------------------------------------------ LimitRange
def resources(cpu: str = "", memory: str = "", storage: str = "") -> dict:
    out = {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}
    return {k: v for k, v in out.items() if v}


def container_resources(pod: client.V1Pod) -> tuple[dict, dict]:
    r = pod.spec.containers[0].resources
    return dict(r.requests or {}), dict(r.limits or {})


@pytest.mark.conformance("LimitRange, resources")
def test_limitrange_defaults_and_bounds(v1: client.CoreV1Api, ns: str) -> None:
    lo, hi = resources("50m", "100Mi", "100Gi"), resources("500m", "500Mi", "500Gi")
    default_limit, default_request = resources("500m", "500Mi", "500Gi"), resources("100m", "200Mi", "200Gi")
    value = uuid.uuid4().hex
    v1.create_namespaced_limit_range(ns, {"metadata": {"name": "limit-range", "labels": {"time": value}},
                                          "spec": {"limits": [{"type": "Container", "min": lo, "max": hi,
                                                               "default": default_limit,
                                                               "defaultRequest": default_request}]}})
    found = v1.list_namespaced_limit_range(ns, label_selector=f"time={value}").items
    assert [x.metadata.name for x in found] == ["limit-range"]
    item = v1.read_namespaced_limit_range("limit-range", ns).spec.limits[0]
    assert (item.min, item.max, item.default, item.default_request) == (lo, hi, default_limit, default_request)

    # a pod without resources gets the defaults
    p = v1.create_namespaced_pod(ns, pod_body("pod-no-resources"))
    assert container_resources(p) == (default_request, default_limit)
    assert "LimitRanger plugin set" in p.metadata.annotations["kubernetes.io/limit-ranger"]
    assert p.status.qos_class == "Burstable"
    # partial requirements are completed from the defaults
    partial = pod_body("pod-partial-resources")
    partial["spec"]["containers"][0]["resources"] = {"requests": resources("300m", "150Mi", "150Gi"),
                                                     "limits": resources("300m", "", "150Gi")}
    p = v1.create_namespaced_pod(ns, partial)
    assert container_resources(p) == (resources("300m", "150Mi", "150Gi"), resources("300m", "500Mi", "150Gi"))
    # out of bounds is forbidden
    below = pod_body("pod-below-min")
    below["spec"]["containers"][0]["resources"] = {"requests": resources("10m", "50Mi", "50Gi")}
    assert status_of(v1.create_namespaced_pod, ns, below) == 403
    above = pod_body("pod-above-max")
    above["spec"]["containers"][0]["resources"] = {"limits": resources("600m", "600Mi", "600Gi")}
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod(ns, above)
    assert e.value.status == 403 and "maximum cpu usage per Container is 500m, but limit is 600m" in e.value.body

    # a lowered minimum lets the small pod in
    cur = v1.read_namespaced_limit_range("limit-range", ns)
    cur.spec.limits[0].min = resources("9m", "49Mi", "49Gi")
    v1.replace_namespaced_limit_range("limit-range", ns, cur)
    assert v1.read_namespaced_limit_range("limit-range", ns).spec.limits[0].min == resources("9m", "49Mi", "49Gi")
    p = v1.create_namespaced_pod(ns, below)
    assert container_resources(p)[0] == resources("10m", "50Mi", "50Gi")

    # without the LimitRange, nothing is bounded
    v1.delete_namespaced_limit_range("limit-range", ns)
    assert v1.list_namespaced_limit_range(ns, label_selector=f"time={value}").items == []
    p = v1.create_namespaced_pod(ns, above)
    assert container_resources(p)[1] == resources("600m", "600Mi", "600Gi")


@pytest.mark.conformance("LimitRange, list, patch and delete a LimitRange by collection")
def test_limitrange_collection(v1: client.CoreV1Api, ns: str, cluster: Cluster) -> None:
    other = f"{ns}-2"
    v1.create_namespace({"metadata": {"name": other}})
    try:
        label = f"e2e-limitrange={ns}"
        for n in (ns, other):
            v1.create_namespaced_limit_range(n, {"metadata": {"name": "e2e-limitrange", "labels": {
                "e2e-limitrange": ns}}, "spec": {"limits": [{"type": "Container",
                                                              "min": resources("1m", "1Mi")}]}})
        found = v1.list_limit_range_for_all_namespaces(label_selector=label).items
        assert sorted(x.metadata.namespace for x in found) == sorted([ns, other])
        patched = v1.patch_namespaced_limit_range("e2e-limitrange", ns, {
            "metadata": {"labels": {"e2e-limitrange": "patched"}},
            "spec": {"limits": [{"type": "Container", "min": resources("2m", "2Mi")}]}})
        assert patched.metadata.labels["e2e-limitrange"] == "patched"
        assert patched.spec.limits[0].min == resources("2m", "2Mi")
        v1.delete_collection_namespaced_limit_range(other, label_selector=label)
        left = v1.list_limit_range_for_all_namespaces(label_selector="e2e-limitrange in (patched," + ns + ")").items
        assert [(x.metadata.namespace, x.metadata.labels["e2e-limitrange"]) for x in left] == [(ns, "patched")]
    finally:
        v1.delete_namespace(other)


# ------------------------------------------------------------------ RuntimeClass
def runtime_class(name: str, **extra) -> dict:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
            "handler": "runc", **extra}


@pytest.mark.conformance("RuntimeClass API")
def test_runtimeclass_api_operations(api: client.ApiClient) -> None:
    assert_discovered(api, "node.k8s.io", "v1", {"runtimeclasses": ALL_VERBS})
    node = client.NodeV1Api(api)
    label = uuid.uuid4().hex
    names = [unique(f"e2e-rc{i}") for i in (1, 2, 3)]
    try:
        for n in names:
            body = runtime_class(n)
            body["metadata"]["labels"] = {"e2e-rc": label}
            node.create_runtime_class(body)
        assert node.read_runtime_class(names[0]).handler == "runc"
        listed = node.list_runtime_class(label_selector=f"e2e-rc={label}")
        assert sorted(r.metadata.name for r in listed.items) == sorted(names)
        w = Watcher(node.list_runtime_class, label_selector=f"e2e-rc={label}",
                    resource_version=listed.metadata.resource_version)
        try:
            p = node.patch_runtime_class(names[0], {"metadata": {"annotations": {"patched": "true"}}})
            assert p.metadata.annotations["patched"] == "true"
            cur = node.read_runtime_class(names[0])
            cur.metadata.annotations["updated"] = "true"
            assert node.replace_runtime_class(names[0], cur).metadata.annotations == {"patched": "true",
                                                                                      "updated": "true"}
            w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.annotations or {}).get("updated") == "true",
                   "runtime class updated")
        finally:
            w.stop()
        assert status_of(node.patch_runtime_class, names[0], {"handler": "other"}) == 422  # immutable
        node.delete_runtime_class(names[0])
        assert status_of(node.read_runtime_class, names[0]) == 404
        node.delete_collection_runtime_class(label_selector=f"e2e-rc={label}")
        assert node.list_runtime_class(label_selector=f"e2e-rc={label}").items == []
    finally:
        for n in names:
            try:
                node.delete_runtime_class(n)
            except ApiException:
                pass


@pytest.mark.conformance("Pod with the non-existing RuntimeClass is rejected.")
def test_pod_with_missing_runtimeclass_is_rejected(v1: client.CoreV1Api, ns: str) -> None:
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod(ns, pod_body("test-runtimeclass", runtimeClassName=f"{ns}-nonexistent"))
    assert e.value.status == 403
    assert f'pod rejected: RuntimeClass \\"{ns}-nonexistent\\" not found' in e.value.body
    assert v1.list_namespaced_pod(ns).items == []


@pytest.mark.conformance("Pod with the deleted RuntimeClass is rejected.")
def test_pod_with_deleted_runtimeclass_is_rejected(api: client.ApiClient, v1: client.CoreV1Api, ns: str) -> None:
    node = client.NodeV1Api(api)
    name = unique("e2e-rc-deleted")
    node.create_runtime_class(runtime_class(name))
    v1.create_namespaced_pod(ns, pod_body("before", runtimeClassName=name))  # accepted while it exists
    node.delete_runtime_class(name)
    wait_for(lambda: gone(node.read_runtime_class, name))
    assert status_of(v1.create_namespaced_pod, ns, pod_body("after", runtimeClassName=name)) == 403
    assert [p.metadata.name for p in v1.list_namespaced_pod(ns).items] == ["before"]


# ------------------------------------------------------------------ PriorityClass, QoS
@pytest.mark.conformance("Scheduler, Verify PriorityClass endpoints")
def test_priorityclass_endpoints(api: client.ApiClient) -> None:
    sched = client.SchedulingV1Api(api)
    label = uuid.uuid4().hex
    names = [unique(f"p{i}") for i in range(1, 4)]
    try:
        for i, n in enumerate(names):
            sched.create_priority_class({"metadata": {"name": n, "labels": {"e2e": label}}, "value": 1000 + i})
        listed = sched.list_priority_class(label_selector=f"e2e={label}").items
        assert sorted((p.metadata.name, p.value) for p in listed) == [(n, 1000 + i) for i, n in enumerate(names)]
        # mutable: metadata, description
        p = sched.patch_priority_class(names[0], {"metadata": {"labels": {"patched": "true"}},
                                                  "description": "patched"})
        assert p.metadata.labels["patched"] == "true" and p.description == "patched"
        cur = sched.read_priority_class(names[1])
        cur.description = "updated"
        assert sched.replace_priority_class(names[1], cur).description == "updated"
        # immutable: value
        assert status_of(sched.patch_priority_class, names[0], {"value": 5}) == 422
        cur = sched.read_priority_class(names[1])
        cur.value = 5
        assert status_of(sched.replace_priority_class, names[1], cur) == 422
        assert sched.read_priority_class(names[1]).value == 1001
        sched.delete_collection_priority_class(label_selector=f"e2e={label}")
        assert sched.list_priority_class(label_selector=f"e2e={label}").items == []
    finally:
        for n in names:
            try:
                sched.delete_priority_class(n)
            except ApiException:
                pass


@pytest.mark.conformance("Pods, QOS")
def test_pod_qos_class_guaranteed(v1: client.CoreV1Api, ns: str) -> None:
    body = pod_body("pod-qos-class")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m", "memory": "100Mi"},
                                                  "limits": {"cpu": "100m", "memory": "100Mi"}}
    created = v1.create_namespaced_pod(ns, body)
    assert created.status.qos_class == "Guaranteed"
    assert v1.read_namespaced_pod("pod-qos-class", ns).status.qos_class == "Guaranteed"


# ------------------------------------------------------------------ on simulated nodes
@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two simulated nodes for ordinary pods, and two big ones (cpu 1000, label preempt=<name>) that
    only the preemption scenarios fill."""
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "2"])
    c.start()
    r = subprocess.run([sys.executable, "-m", "kubelite", "nodes", "--kubeconfig", c.kubeconfig, "add", "2",
                        "--name-prefix", "preempt-", "--cpu", "1000"], capture_output=True, text=True, cwd=REPO,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    sim_api = c.api_client()
    core = client.CoreV1Api(sim_api)

    def ready() -> bool:
        nodes = core.list_node().items
        return len([n for n in nodes if any(x.type == "Ready" and x.status == "True"
                                            for x in n.status.conditions or [])]) >= 4
    wait_for(ready, timeout=30)
    sim_api.close()
    yield c
    c.stop()


@pytest.fixture
def sim_ns(sim: Cluster) -> Iterator[tuple[client.ApiClient, str]]:
    a = sim.api_client()
    name = "n-" + uuid.uuid4().hex[:8]
    client.CoreV1Api(a).create_namespace({"metadata": {"name": name}})
    yield a, name
    try:
        client.CoreV1Api(a).delete_namespace(name)
    except ApiException:
        pass
    a.close()


def running(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod:
    """The pod once Running and Ready and its status settled (unchanged over half a second): its
    kubelet has nothing more to report, so a status written by the test stays until it changes."""
    seen: list[str] = []

    def check() -> client.V1Pod | None:
        p = core.read_namespaced_pod(name, ns)
        ready = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        if not (p.status.phase == "Running" and p.status.pod_ip and ready):
            return None
        seen.append(p.metadata.resource_version)
        return p if seen[-5:] == [seen[-1]] * 5 else None
    return wait_for(check, timeout=30)


@pytest.mark.conformance("Pods, lifecycle")
def test_pod_submitted_and_removed(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    value = uuid.uuid4().hex
    sel = f"time={value}"
    listed = core.list_namespaced_pod(ns, label_selector=sel)
    assert listed.items == []
    w = Watcher(core.list_namespaced_pod, ns, label_selector=sel, resource_version=listed.metadata.resource_version)
    try:
        body = pod_body("pod-submit-remove", {"name": "foo", "time": value}, terminationGracePeriodSeconds=1)
        core.create_namespaced_pod(ns, body)
        assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector=sel).items] == [
            "pod-submit-remove"]
        w.wait(lambda t, o: t == "ADDED", "pod added")
        running(core, ns, "pod-submit-remove")
        core.delete_namespaced_pod("pod-submit-remove", ns, grace_period_seconds=30)
        w.wait(lambda t, o: t == "MODIFIED" and o.metadata.deletion_timestamp is not None, "deletion timestamp set")
        w.wait(lambda t, o: t == "DELETED", "pod deleted")
    finally:
        w.stop()
    assert core.list_namespaced_pod(ns, label_selector=sel).items == []


@pytest.mark.conformance("Pods, update")
def test_pod_update(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    value = uuid.uuid4().hex
    core.create_namespaced_pod(ns, pod_body("pod-update", {"name": "foo", "time": value}))
    assert len(core.list_namespaced_pod(ns, label_selector=f"time={value}").items) == 1
    running(core, ns, "pod-update")

    def relabel() -> client.V1Pod | None:
        cur = core.read_namespaced_pod("pod-update", ns)
        cur.metadata.labels["time"] = "updated"
        try:
            return core.replace_namespaced_pod("pod-update", ns, cur)
        except ApiException as e:
            if e.status == 409:  # the kubelet wrote status in between
                return None
            raise
    wait_for(relabel)
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="time=updated").items] == [
        "pod-update"]
    assert core.list_namespaced_pod(ns, label_selector=f"time={value}").items == []


@pytest.mark.conformance("Pods, delete a collection")
def test_pod_delete_collection(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_pod(ns, pod_body(f"test-pod-{i}", {"type": "Testing"},
                                                terminationGracePeriodSeconds=1))
    core.create_namespaced_pod(ns, pod_body("other", {"type": "Other"}))
    assert len(core.list_namespaced_pod(ns, label_selector="type=Testing").items) == 3
    core.delete_collection_namespaced_pod(ns, label_selector="type=Testing", grace_period_seconds=1)
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="type=Testing").items == [], timeout=30)
    assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == ["other"]


@pytest.mark.conformance("Pods, patching status")
def test_pod_patch_status(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, pod_body("pod-patch-status"))
    running(core, ns, "pod-patch-status")
    patched = core.patch_namespaced_pod_status("pod-patch-status", ns, {
        "metadata": {"annotations": {"patchedstatus": "true"}},
        "status": {"message": "Patched by e2e test", "reason": "E2E"}})
    assert patched.metadata.annotations["patchedstatus"] == "true"
    assert (patched.status.message, patched.status.reason) == ("Patched by e2e test", "E2E"), patched.status
    # the metadata half of the status patch stays (the kubelet owns, and rewrites, the status proper)
    assert core.read_namespaced_pod("pod-patch-status", ns).metadata.annotations["patchedstatus"] == "true"


@pytest.mark.conformance("Pods, completes the lifecycle of a Pod and the PodStatus")
def test_pod_and_podstatus_lifecycle(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, pod_body("pod-test", {"test-pod-static": "true"}, terminationGracePeriodSeconds=1))
    running(core, ns, "pod-test")
    patched = core.patch_namespaced_pod("pod-test", ns, {"metadata": {"labels": {"test-pod": "patched"}},
                                                        "spec": {"containers": [{"name": "agnhost",
                                                                                 "image": "nginx:1.25"}]}})
    assert patched.metadata.labels["test-pod"] == "patched" and patched.spec.containers[0].image == "nginx:1.25"
    st = core.read_namespaced_pod_status("pod-test", ns)
    assert st.status.phase == "Running"

    def replace_status() -> client.V1Pod | None:
        cur = core.read_namespaced_pod_status("pod-test", ns)
        cur.status.conditions = [*(cur.status.conditions or []),
                                 {"type": "PodStatusReplaced", "status": "True", "reason": "E2E"}]
        try:
            return core.replace_namespaced_pod_status("pod-test", ns, cur)
        except ApiException as e:
            if e.status == 409:
                return None
            raise
    replaced = wait_for(replace_status)
    assert "PodStatusReplaced" in {c.type for c in replaced.status.conditions}
    core.delete_namespaced_pod("pod-test", ns)
    wait_for(lambda: gone(core.read_namespaced_pod, "pod-test", ns), timeout=30)


@pytest.mark.conformance("Pods, ActiveDeadlineSeconds")
def test_pod_active_deadline_seconds(sim_ns) -> None:
    api, ns = sim_ns
    core = client.CoreV1Api(api)
    value = uuid.uuid4().hex
    core.create_namespaced_pod(ns, pod_body("pod-update-activedeadlineseconds", {"time": value}))
    assert len(core.list_namespaced_pod(ns, label_selector=f"time={value}").items) == 1
    running(core, ns, "pod-update-activedeadlineseconds")
    core.patch_namespaced_pod("pod-update-activedeadlineseconds", ns, {"spec": {"activeDeadlineSeconds": 5}})

    def failed() -> client.V1Pod | None:
        p = core.read_namespaced_pod("pod-update-activedeadlineseconds", ns)
        return p if p.status.phase == "Failed" else None
    p = wait_for(failed, timeout=30)
    assert p.status.reason == "DeadlineExceeded"
    assert p.spec.active_deadline_seconds == 5
    assert all(s.state.terminated is not None for s in p.status.container_statuses)


@pytest.mark.conformance("Can schedule a pod requesting existing RuntimeClass.")
def test_pod_with_existing_runtimeclass_is_scheduled(sim_ns) -> None:
    api, ns = sim_ns
    node, core = client.NodeV1Api(api), client.CoreV1Api(api)
    name = unique("e2e-rc")
    node.create_runtime_class(runtime_class(name))
    try:
        created = core.create_namespaced_pod(ns, pod_body("test-runtimeclass", runtimeClassName=name))
        assert created.spec.runtime_class_name == name and not created.spec.overhead
        wait_for(lambda: core.read_namespaced_pod("test-runtimeclass", ns).spec.node_name, timeout=30)
    finally:
        node.delete_runtime_class(name)


@pytest.mark.conformance("RuntimeClass Overhead field must be respected.")
def test_pod_gets_runtimeclass_overhead(sim_ns) -> None:
    api, ns = sim_ns
    node, core = client.NodeV1Api(api), client.CoreV1Api(api)
    name = unique("e2e-rc-overhead")
    node.create_runtime_class(runtime_class(name, overhead={"podFixed": {"cpu": "10m", "memory": "1Mi"}}))
    try:
        created = core.create_namespaced_pod(ns, pod_body("test-overhead", runtimeClassName=name))
        assert created.spec.overhead == {"cpu": "10m", "memory": "1Mi"}
        wait_for(lambda: core.read_namespaced_pod("test-overhead", ns).spec.node_name, timeout=30)
        assert core.read_namespaced_pod("test-overhead", ns).spec.overhead == {"cpu": "10m", "memory": "1Mi"}
        # a hand-set overhead that differs from the class's is refused
        bad = pod_body("wrong-overhead", runtimeClassName=name, overhead={"cpu": "1"})
        assert status_of(core.create_namespaced_pod, ns, bad) == 403
    finally:
        node.delete_runtime_class(name)


# ------------------------------------------------------------------ preemption
def pause_pod_template(name: str, node: str, cpu: str, priority_class: str, pod_name: str = "") -> dict:
    meta = {"name": pod_name, "labels": {"name": name}} if pod_name else {"labels": {"name": name}}
    return {"metadata": meta,
            "spec": {"priorityClassName": priority_class, "nodeSelector": {"kubernetes.io/hostname": node},
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": name, "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}


@pytest.mark.conformance("Pod preemption verification")
def test_preemption_execution_path(sim_ns) -> None:
    api, ns = sim_ns
    core, apps, sched = client.CoreV1Api(api), client.AppsV1Api(api), client.SchedulingV1Api(api)
    node = "preempt-0"
    classes = {f"{ns}-p{i}": i for i in range(1, 5)}
    for name, value in classes.items():
        sched.create_priority_class({"metadata": {"name": name}, "value": value})
    created: dict[str, set[str]] = {f"pod{i}": set() for i in range(1, 5)}
    listed = core.list_namespaced_pod(ns)
    w = Watcher(core.list_namespaced_pod, ns, resource_version=listed.metadata.resource_version)
    try:
        # 950 of the node's 1000 cpus taken by three ReplicaSets of rising priority
        for i, cpu in ((1, "200"), (2, "300"), (3, "450")):
            apps.create_namespaced_replica_set(ns, {
                "metadata": {"name": f"rs-pod{i}"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"name": f"pod{i}"}},
                         "template": pause_pod_template(f"pod{i}", node, cpu, f"{ns}-p{i}")}})
        for i in (1, 2, 3):
            wait_for(lambda i=i: (apps.read_namespaced_replica_set(f"rs-pod{i}", ns).status.available_replicas
                                  or 0) == 1, timeout=30)
        # the highest priority pod needs 500: pod1 and pod2 (the cheapest victims by priority) make room
        core.create_namespaced_pod(ns, pause_pod_template("pod4", node, "500", f"{ns}-p4", pod_name="pod4"))
        wait_for(lambda: core.read_namespaced_pod("pod4", ns).spec.node_name == node, timeout=60)

        def seen() -> dict[str, int]:
            for t, o in list(w.events):
                if t == "ADDED":
                    created[o.metadata.labels["name"]].add(o.metadata.name)
            return {k: len(v) for k, v in created.items()}
        # pod1 and pod2 are recreated by their ReplicaSets (and stay pending); pod3 was never touched
        wait_for(lambda: seen() == {"pod1": 2, "pod2": 2, "pod3": 1, "pod4": 1}, timeout=30)
        for i in (1, 2, 3):
            rs = apps.read_namespaced_replica_set(f"rs-pod{i}", ns)
            assert rs.status.replicas == 1, f"rs-pod{i}: {rs.status}"
        pending = {p.metadata.labels["name"]: p.spec.node_name for p in core.list_namespaced_pod(ns).items
                   if not p.metadata.deletion_timestamp}
        assert pending == {"pod1": None, "pod2": None, "pod3": node, "pod4": node}
    finally:
        w.stop()
        for name in classes:
            sched.delete_priority_class(name)


@pytest.mark.conformance("Scheduler, Preemption for critical pod")
def test_critical_pod_preempts_lower_priority(sim_ns) -> None:
    api, ns = sim_ns
    core, sched = client.CoreV1Api(api), client.SchedulingV1Api(api)
    node = "preempt-1"
    low = f"{ns}-low"
    sched.create_priority_class({"metadata": {"name": low}, "value": 1})
    critical = f"critical-{ns}"
    try:
        core.create_namespaced_pod(ns, pause_pod_template("victim", node, "800", low, pod_name="victim"))
        running(core, ns, "victim")
        body = pause_pod_template(critical, node, "500", "system-cluster-critical", pod_name=critical)
        created = core.create_namespaced_pod("kube-system", body)
        assert created.spec.priority == 2000000000
        wait_for(lambda: core.read_namespaced_pod(critical, "kube-system").spec.node_name == node, timeout=60)
        wait_for(lambda: gone(core.read_namespaced_pod, "victim", ns), timeout=30)
        events = core.list_namespaced_event(ns, field_selector="involvedObject.name=victim").items
        assert any(e.reason == "Preempted" for e in events), [(e.reason, e.message) for e in events]
    finally:
        try:
            core.delete_namespaced_pod(critical, "kube-system", grace_period_seconds=0)
        except ApiException:
            pass
        sched.delete_priority_class(low)

