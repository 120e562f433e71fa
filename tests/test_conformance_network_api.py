"""Upstream's sig-network conformance behaviours that the API alone decides, end to end through the
official client: Ingress and IngressClass operations, Service type changes, the ServiceStatus
lifecycle, deleting a collection of services, the `kubernetes` Service, multi-port and multi-protocol
endpoints and the Endpoints lifecycle. Pods are bound to the heartbeating test node and given an IP
through their status, as a kubelet would; name resolution is checked against the cluster DNS."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from test_dns import a_records, dns_addr, query, records  # noqa: F401  (dns_addr is a fixture)
from test_endpoints import make_pod, wait_for


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = cluster.api_client()
    yield c
    c.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def get_json(api: client.ApiClient, path: str) -> dict:
    """GET a path the generated client has no method for, decoded."""
    method, url, headers, _, _ = api.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                                     auth_settings=["BearerToken"])
    r = api.call_api(method, url, header_params=headers)
    r.read()
    return json.loads(r.data)


def assert_discovered(api: client.ApiClient, group: str, version: str, resources: dict[str, set[str]]) -> None:
    """The group in /apis, the version in /apis/<group>, each resource with at least these verbs in
    /apis/<group>/<version>."""
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert group in groups, f"{group} not in /apis"
    assert f"{group}/{version}" in {v.group_version for v in groups[group].versions}
    data = get_json(api, f"/apis/{group}")
    assert f"{group}/{version}" in {v["groupVersion"] for v in data["versions"]}
    data = get_json(api, f"/apis/{group}/{version}")
    served = {r["name"]: set(r["verbs"]) for r in data["resources"]}
    for name, verbs in resources.items():
        assert name in served, f"{name} not served by {group}/{version}"
        assert verbs <= served[name], f"{name}: {verbs - served[name]} missing"


ALL_VERBS = {"create", "get", "list", "watch", "update", "patch", "delete", "deletecollection"}


class Watcher:
    """A watch running in a thread from a resourceVersion on, collecting (type, object) events."""

    def __init__(self, list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.events: list[tuple[str, Any]] = []
        self._w = watch.Watch()
        self._t = threading.Thread(target=self._run, args=(list_fn, args, kwargs), daemon=True)
        self._t.start()

    def _run(self, list_fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            for ev in self._w.stream(list_fn, *args, timeout_seconds=60, **kwargs):
                self.events.append((ev["type"], ev["object"]))
        except Exception:  # noqa: BLE001 - the watch ends with the test
            pass

    def wait(self, pred: Callable[[str, Any], bool], what: str) -> tuple[str, Any]:
        def seen() -> tuple[str, Any] | None:
            return next(((t, o) for t, o in list(self.events) if pred(t, o)), None)
        try:
            return wait_for(seen, timeout=20)
        except AssertionError:
            raise AssertionError(
                f"no watch event: {what}; saw {[(t, o.metadata.name) for t, o in self.events]}") from None

    def stop(self) -> None:
        self._w.stop()


# ------------------------------------------------------------------ Ingress, IngressClass
def ingress(name: str, label: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "labels": {"special-label": label}},
            "spec": {"defaultBackend": {"service": {"name": "default-backend", "port": {"number": 8080}}},
                     "rules": [{"host": "foo.bar.com", "http": {"paths": [
                         {"path": "/", "pathType": "Prefix",
                          "backend": {"service": {"name": "test-backend", "port": {"number": 8080}}}}]}}]}}


@pytest.mark.conformance("Ingress API")
def test_ingress_api_operations(api: client.ApiClient, ns: str) -> None:
    assert_discovered(api, "networking.k8s.io", "v1",
                      {"ingresses": ALL_VERBS, "ingresses/status": {"update", "patch"}})
    net = client.NetworkingV1Api(api)
    label = uuid.uuid4().hex
    sel = f"special-label={label}"
    created = [net.create_namespaced_ingress(ns, ingress(f"ingress{i}", label)) for i in (1, 2, 3)]
    got = net.read_namespaced_ingress("ingress1", ns)
    assert got.metadata.uid == created[0].metadata.uid and got.spec.rules[0].host == "foo.bar.com"
    listed = net.list_namespaced_ingress(ns, label_selector=sel)
    assert sorted(i.metadata.name for i in listed.items) == ["ingress1", "ingress2", "ingress3"]
    everywhere = net.list_ingress_for_all_namespaces(label_selector=sel)
    assert len(everywhere.items) == 3

    w = Watcher(net.list_namespaced_ingress, ns, label_selector=sel,
                resource_version=listed.metadata.resource_version)
    try:
        patched = net.patch_namespaced_ingress("ingress1", ns, {"metadata": {"annotations": {"patched": "true"}}})
        assert patched.metadata.annotations["patched"] == "true"
        cur = net.read_namespaced_ingress("ingress1", ns)
        cur.metadata.annotations["updated"] = "true"
        updated = net.replace_namespaced_ingress("ingress1", ns, cur)
        assert updated.metadata.annotations == {"patched": "true", "updated": "true"}
        w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.annotations or {}).get("patched") == "true",
               "patched ingress1")
        w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.annotations or {}).get("updated") == "true",
               "updated ingress1")
    finally:
        w.stop()

    st = net.read_namespaced_ingress_status("ingress1", ns)
    assert st.metadata.name == "ingress1"
    st = net.patch_namespaced_ingress_status("ingress1", ns, {"status": {"loadBalancer": {"ingress": [
        {"ip": "169.1.1.1"}]}}})
    assert [i.ip for i in st.status.load_balancer.ingress] == ["169.1.1.1"]
    cur = net.read_namespaced_ingress_status("ingress1", ns)
    cur.status.load_balancer = {"ingress": [{"ip": "169.1.1.2"}]}
    st = net.replace_namespaced_ingress_status("ingress1", ns, cur)
    assert [i.ip for i in st.status.load_balancer.ingress] == ["169.1.1.2"]
    assert net.read_namespaced_ingress("ingress1", ns).spec.rules[0].host == "foo.bar.com"

    net.delete_namespaced_ingress("ingress1", ns)
    with pytest.raises(ApiException) as e:
        net.read_namespaced_ingress("ingress1", ns)
    assert e.value.status == 404
    assert len(net.list_namespaced_ingress(ns, label_selector=sel).items) == 2
    net.delete_collection_namespaced_ingress(ns, label_selector=sel)
    assert net.list_namespaced_ingress(ns, label_selector=sel).items == []


@pytest.mark.conformance("IngressClass API")
def test_ingressclass_api_operations(api: client.ApiClient) -> None:
    assert_discovered(api, "networking.k8s.io", "v1", {"ingressclasses": ALL_VERBS})
    net = client.NetworkingV1Api(api)
    label = uuid.uuid4().hex
    sel = f"ingressclass={label}"
    names = [unique(f"e2e-ic{i}") for i in (1, 2, 3)]
    try:
        for n in names:
            net.create_ingress_class({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                      "metadata": {"name": n, "labels": {"ingressclass": label}},
                                      "spec": {"controller": "example.com/e2e"}})
        assert net.read_ingress_class(names[0]).spec.controller == "example.com/e2e"
        listed = net.list_ingress_class(label_selector=sel)
        assert sorted(i.metadata.name for i in listed.items) == sorted(names)
        w = Watcher(net.list_ingress_class, label_selector=sel, resource_version=listed.metadata.resource_version)
        try:
            p = net.patch_ingress_class(names[0], {"metadata": {"annotations": {"patched": "true"}}})
            assert p.metadata.annotations["patched"] == "true"
            cur = net.read_ingress_class(names[0])
            cur.metadata.annotations["updated"] = "true"
            u = net.replace_ingress_class(names[0], cur)
            assert u.metadata.annotations == {"patched": "true", "updated": "true"}
            w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.annotations or {}).get("updated") == "true",
                   "updated ingress class")
        finally:
            w.stop()
        with pytest.raises(ApiException) as e:  # the controller is immutable
            net.patch_ingress_class(names[0], {"spec": {"controller": "example.com/other"}})
        assert e.value.status == 422
        net.delete_ingress_class(names[0])
        with pytest.raises(ApiException) as e:
            net.read_ingress_class(names[0])
        assert e.value.status == 404
        assert len(net.list_ingress_class(label_selector=sel).items) == 2
        net.delete_collection_ingress_class(label_selector=sel)
        assert net.list_ingress_class(label_selector=sel).items == []
    finally:
        for n in names:
            try:
                net.delete_ingress_class(n)
            except ApiException:
                pass


# ------------------------------------------------------------------ Service types
def service(name: str, **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def svc_name(ns: str, name: str) -> str:
    return f"{name}.{ns}.svc.cluster.local"


def assert_cname(addr: tuple[str, int], fqdn: str, target: str) -> None:
    wait_for(lambda: records(query(addr, fqdn, "CNAME")) == [(fqdn + ".", "CNAME", target + ".")])


@pytest.mark.conformance("Service, change type, ClusterIP to ExternalName")
def test_change_type_clusterip_to_externalname(core: client.CoreV1Api, ns: str, dns_addr) -> None:  # noqa: F811
    svc = core.create_namespaced_service(ns, service("clusterip-service", type="ClusterIP",
                                                     ports=[{"port": 80, "protocol": "TCP"}]))
    assert svc.spec.cluster_ip and svc.spec.cluster_ip != "None"
    wait_for(lambda: a_records(query(dns_addr, svc_name(ns, "clusterip-service"))) == {svc.spec.cluster_ip})
    svc.spec.type = "ExternalName"
    svc.spec.external_name = "foo.example.com"
    updated = core.replace_namespaced_service("clusterip-service", ns, svc)
    assert updated.spec.type == "ExternalName" and updated.spec.external_name == "foo.example.com"
    assert not updated.spec.cluster_ip and not updated.spec.cluster_ips
    assert not core.read_namespaced_service("clusterip-service", ns).spec.cluster_ip
    assert_cname(dns_addr, svc_name(ns, "clusterip-service"), "foo.example.com")


@pytest.mark.conformance("Service, change type, ExternalName to ClusterIP")
def test_change_type_externalname_to_clusterip(core: client.CoreV1Api, ns: str, dns_addr) -> None:  # noqa: F811
    svc = core.create_namespaced_service(ns, service("externalname-service", type="ExternalName",
                                                     externalName="foo.example.com"))
    assert not svc.spec.cluster_ip
    assert_cname(dns_addr, svc_name(ns, "externalname-service"), "foo.example.com")
    svc.spec.type = "ClusterIP"
    svc.spec.external_name = None
    svc.spec.ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    updated = core.replace_namespaced_service("externalname-service", ns, svc)
    ip = updated.spec.cluster_ip
    assert updated.spec.type == "ClusterIP" and ip and ip != "None" and updated.spec.cluster_ips == [ip]
    assert [(p.port, p.protocol) for p in updated.spec.ports] == [(80, "TCP")]
    wait_for(lambda: a_records(query(dns_addr, svc_name(ns, "externalname-service"))) == {ip})


@pytest.mark.conformance("Service, change type, ExternalName to NodePort")
def test_change_type_externalname_to_nodeport(core: client.CoreV1Api, ns: str, dns_addr) -> None:  # noqa: F811
    svc = core.create_namespaced_service(ns, service("externalname-service", type="ExternalName",
                                                     externalName="foo.example.com"))
    assert not svc.spec.cluster_ip
    svc.spec.type = "NodePort"
    svc.spec.external_name = None
    svc.spec.ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    updated = core.replace_namespaced_service("externalname-service", ns, svc)
    ip = updated.spec.cluster_ip
    assert updated.spec.type == "NodePort" and ip and ip != "None"
    node_port = updated.spec.ports[0].node_port
    assert 30000 <= node_port <= 32767
    wait_for(lambda: a_records(query(dns_addr, svc_name(ns, "externalname-service"))) == {ip})


@pytest.mark.conformance("Service, change type, NodePort to ExternalName")
def test_change_type_nodeport_to_externalname(core: client.CoreV1Api, ns: str, dns_addr) -> None:  # noqa: F811
    svc = core.create_namespaced_service(ns, service("nodeport-service", type="NodePort",
                                                     ports=[{"port": 80, "protocol": "TCP"}]))
    node_port = svc.spec.ports[0].node_port
    assert svc.spec.cluster_ip and 30000 <= node_port <= 32767
    # while allocated, nobody else gets the port
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(ns, service("taker", type="NodePort",
                                                   ports=[{"port": 80, "nodePort": node_port}]))
    assert e.value.status == 422 and "provided port is already allocated" in e.value.body
    svc.spec.type = "ExternalName"
    svc.spec.external_name = "foo.example.com"
    svc.spec.ports = None
    updated = core.replace_namespaced_service("nodeport-service", ns, svc)
    assert updated.spec.type == "ExternalName" and not updated.spec.cluster_ip and not updated.spec.ports
    assert_cname(dns_addr, svc_name(ns, "nodeport-service"), "foo.example.com")
    # the node port was released: another service can have it
    taker = core.create_namespaced_service(ns, service("taker", type="NodePort",
                                                       ports=[{"port": 80, "nodePort": node_port}]))
    assert taker.spec.ports[0].node_port == node_port


# ------------------------------------------------------------------ Service status, collections
@pytest.mark.conformance("Service, complete ServiceStatus lifecycle")
def test_service_status_lifecycle(core: client.CoreV1Api, ns: str) -> None:
    label = {"test-service-static": "true"}
    created = core.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-service", "labels": label},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                 "selector": {"test-service-static": "true"}}})
    listed = core.list_namespaced_service(ns, label_selector="test-service-static=true")
    assert [s.metadata.name for s in listed.items] == ["test-service"]
    w = Watcher(core.list_namespaced_service, ns, label_selector="test-service-static=true",
                resource_version=listed.metadata.resource_version)
    try:
        st = core.read_namespaced_service_status("test-service", ns)
        assert st.metadata.uid == created.metadata.uid and st.spec.ports[0].port == 80
        patched = core.patch_namespaced_service_status("test-service", ns, {
            "metadata": {"annotations": {"patchedstatus": "true"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}})
        assert [i.ip for i in patched.status.load_balancer.ingress] == ["203.0.113.1"]
        assert patched.metadata.annotations["patchedstatus"] == "true"
        w.wait(lambda t, o: t == "MODIFIED" and o.status.load_balancer.ingress
               and o.status.load_balancer.ingress[0].ip == "203.0.113.1", "status patched")

        for attempt in range(5):  # retry.RetryOnConflict, as the e2e: ServiceLB writes this status too
            cur = core.read_namespaced_service_status("test-service", ns)
            cur.status.conditions = [{"type": "StatusUpdate", "status": "True", "reason": "E2E",
                                      "message": "Set from e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
            try:
                updated = core.replace_namespaced_service_status("test-service", ns, cur)
                break
            except ApiException as e:
                if e.status != 409 or attempt == 4:
                    raise
        assert [(c.type, c.status, c.reason) for c in updated.status.conditions] == [("StatusUpdate", "True", "E2E")]
        w.wait(lambda t, o: t == "MODIFIED" and any(c.type == "StatusUpdate" for c in o.status.conditions or []),
               "status updated")

        svc = core.patch_namespaced_service("test-service", ns, {"metadata": {"labels": {"test-service": "patched"}},
                                                                 "spec": {"ports": [{"port": 80, "targetPort": 8081}]}})
        assert svc.metadata.labels["test-service"] == "patched"
        assert [(p.name, p.port, p.target_port) for p in svc.spec.ports] == [("http", 80, 8081)]
        assert svc.status.conditions[0].type == "StatusUpdate"  # a spec patch keeps the status
        w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.labels or {}).get("test-service") == "patched",
               "service patched")

        core.delete_namespaced_service("test-service", ns)
        w.wait(lambda t, o: t == "DELETED" and o.metadata.name == "test-service", "service deleted")
    finally:
        w.stop()


@pytest.mark.conformance("Service, deletes a collection of services")
def test_delete_collection_of_services(core: client.CoreV1Api, ns: str) -> None:
    for name, labeled in (("e2e-svc-a", True), ("e2e-svc-b", True), ("e2e-svc-c", False)):
        body = service(name, ports=[{"port": 8000, "name": "http", "protocol": "TCP"}])
        if labeled:
            body["metadata"]["labels"] = {"e2e-test-service": "delete"}
        core.create_namespaced_service(ns, body)
    assert len(core.list_namespaced_service(ns).items) == 3
    core.delete_collection_namespaced_service(ns, label_selector="e2e-test-service=delete")
    left = wait_for(lambda: (s := core.list_namespaced_service(ns).items) and len(s) == 1 and s)
    assert [s.metadata.name for s in left] == ["e2e-svc-c"]


@pytest.mark.conformance("Kubernetes Service")
def test_kubernetes_service_exists(core: client.CoreV1Api) -> None:
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip
    assert [(p.name, p.port, p.protocol) for p in svc.spec.ports] == [("https", 443, "TCP")]
    ep = core.read_namespaced_endpoints("kubernetes", "default")
    assert ep.subsets and ep.subsets[0].addresses and ep.subsets[0].ports[0].name == "https"


# ------------------------------------------------------------------ endpoints
def endpoint_ports(core: client.CoreV1Api, ns: str, name: str) -> dict[str, set[tuple[str, int, str]]]:
    """pod IP -> {(port name, port, protocol)} of the ready addresses of the service's Endpoints."""
    try:
        ep = core.read_namespaced_endpoints(name, ns)
    except ApiException as e:
        if e.status == 404:
            return {}
        raise
    out: dict[str, set[tuple[str, int, str]]] = {}
    for s in ep.subsets or []:
        for a in s.addresses or []:
            out.setdefault(a.ip, set()).update((p.name or "", p.port, p.protocol) for p in s.ports or [])
    return out


def expect_endpoints(core: client.CoreV1Api, ns: str, name: str, want: dict) -> None:
    def ok() -> bool:
        got = endpoint_ports(core, ns, name)
        assert got == want, f"endpoints {got} != {want}"
        return True
    wait_for(ok)


@pytest.mark.conformance("Service, endpoints with multiple ports")
def test_multiport_endpoints(core: client.CoreV1Api, ns: str) -> None:
    labels = {"multi-endpoint": ns}
    core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "multi-endpoint"},
                                        "spec": {"selector": labels, "ports": [
                                            {"name": "portname1", "port": 80, "targetPort": "svc1"},
                                            {"name": "portname2", "port": 81, "targetPort": "svc2"}]}})
    expect_endpoints(core, ns, "multi-endpoint", {})
    make_pod(core, ns, "pod1", "10.244.7.1", labels=labels, ports=[{"name": "svc1", "containerPort": 100}])
    expect_endpoints(core, ns, "multi-endpoint", {"10.244.7.1": {("portname1", 100, "TCP")}})
    make_pod(core, ns, "pod2", "10.244.7.2", labels=labels, ports=[{"name": "svc2", "containerPort": 101}])
    expect_endpoints(core, ns, "multi-endpoint", {"10.244.7.1": {("portname1", 100, "TCP")},
                                                  "10.244.7.2": {("portname2", 101, "TCP")}})
    core.delete_namespaced_pod("pod1", ns, grace_period_seconds=0)
    expect_endpoints(core, ns, "multi-endpoint", {"10.244.7.2": {("portname2", 101, "TCP")}})
    core.delete_namespaced_pod("pod2", ns, grace_period_seconds=0)
    expect_endpoints(core, ns, "multi-endpoint", {})


@pytest.mark.conformance("Service, should serve endpoints on same port and different protocols.")
def test_same_port_different_protocols(cluster: Cluster, core: client.CoreV1Api, ns: str) -> None:
    labels = {"app": "proto"}
    make_pod(core, ns, "server", "10.244.8.1", labels=labels,
             ports=[{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}])
    svc = core.create_namespaced_service(ns, service("proto", selector=labels, ports=[
        {"name": "tcp-port", "port": 80, "protocol": "TCP"}, {"name": "udp-port", "port": 80, "protocol": "UDP"}]))
    assert [(p.port, p.protocol) for p in svc.spec.ports] == [(80, "TCP"), (80, "UDP")]
    expect_endpoints(core, ns, "proto", {"10.244.8.1": {("tcp-port", 80, "TCP"), ("udp-port", 80, "UDP")}})
    disc = client.DiscoveryV1Api(core.api_client)

    def slice_ports() -> set[tuple[str, int, str]]:
        items = disc.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=proto").items
        return {(p.name, p.port, p.protocol) for s in items if s.endpoints for p in s.ports or []}
    wait_for(lambda: slice_ports() == {("tcp-port", 80, "TCP"), ("udp-port", 80, "UDP")})

    svc.spec.ports = [{"name": "tcp-port", "port": 80, "protocol": "TCP"}]
    svc = core.replace_namespaced_service("proto", ns, svc)
    assert [(p.port, p.protocol) for p in svc.spec.ports] == [(80, "TCP")]
    expect_endpoints(core, ns, "proto", {"10.244.8.1": {("tcp-port", 80, "TCP")}})
    wait_for(lambda: slice_ports() == {("tcp-port", 80, "TCP")})

    svc.spec.ports = [{"name": "udp-port", "port": 80, "protocol": "UDP"}]
    core.replace_namespaced_service("proto", ns, svc)
    expect_endpoints(core, ns, "proto", {"10.244.8.1": {("udp-port", 80, "UDP")}})
    wait_for(lambda: slice_ports() == {("udp-port", 80, "UDP")})


@pytest.mark.conformance("Endpoint resource lifecycle")
def test_endpoint_lifecycle(core: client.CoreV1Api, ns: str) -> None:
    name = "testservice"
    created = core.create_namespaced_endpoints(ns, {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "labels": {"test-endpoint-static": "true"}},
        "subsets": [{"addresses": [{"ip": "10.0.0.24"}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]})
    listed = core.list_endpoints_for_all_namespaces(label_selector="test-endpoint-static=true")
    assert [(e.metadata.namespace, e.metadata.name) for e in listed.items] == [(ns, name)]
    w = Watcher(core.list_namespaced_endpoints, ns, label_selector="test-endpoint-static=true",
                resource_version=listed.metadata.resource_version)
    try:
        cur = core.read_namespaced_endpoints(name, ns)
        assert cur.metadata.uid == created.metadata.uid
        cur.metadata.labels["test-service"] = "updated"
        core.replace_namespaced_endpoints(name, ns, cur)
        got = core.read_namespaced_endpoints(name, ns)
        assert got.metadata.labels == {"test-endpoint-static": "true", "test-service": "updated"}
        w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.labels or {}).get("test-service") == "updated",
               "label update")

        core.patch_namespaced_endpoints(name, ns, {
            "metadata": {"labels": {"test-service": "patched"}},
            "subsets": [{"addresses": [{"ip": "10.0.0.25"}], "ports": [{"name": "http-test", "port": 8080}]}]})
        got = core.read_namespaced_endpoints(name, ns)
        assert got.metadata.labels["test-service"] == "patched"
        assert [a.ip for a in got.subsets[0].addresses] == ["10.0.0.25"]
        assert [(p.name, p.port) for p in got.subsets[0].ports] == [("http-test", 8080)]
        w.wait(lambda t, o: t == "MODIFIED" and (o.metadata.labels or {}).get("test-service") == "patched",
               "patch")

        core.delete_collection_namespaced_endpoints(ns, label_selector="test-service=patched")
        w.wait(lambda t, o: t == "DELETED" and o.metadata.name == name, "deletion")
        with pytest.raises(ApiException) as e:
            core.read_namespaced_endpoints(name, ns)
        assert e.value.status == 404
    finally:
        w.stop()
