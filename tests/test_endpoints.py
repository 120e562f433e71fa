"""Endpoints, EndpointSlices and their mirroring, end to end against a real kubelite.

Pods are created bound to a (nonexistent) node and given an IP and a Ready condition through the
status subresource, as a kubelet would, so these tests need no container runtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import TEST_NODE as NODE


def wait_for(fn: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll until fn() returns something truthy; its last value (or the last assertion) on timeout."""
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
            err: BaseException | None = None
        except AssertionError as e:
            err = e
        if time.time() > deadline:
            if err:
                raise err
            raise AssertionError(f"timed out waiting; last value {v!r}")
        time.sleep(interval)


def pod_manifest(name: str, labels: dict, ports: list[dict] | None = None, hostname: str = "",
                 subdomain: str = "") -> dict:
    spec: dict = {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox", "ports": ports or []}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def set_pod_status(core, ns: str, name: str, ip: str, ready: bool) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.10",
              "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}
    core.patch_namespaced_pod_status(name, ns, {"status": status})


def make_pod(core, ns: str, name: str, ip: str, ready: bool = True, labels: dict | None = None, **kw) -> None:
    core.create_namespaced_pod(ns, pod_manifest(name, labels or {"app": "web"}, **kw))
    set_pod_status(core, ns, name, ip, ready)


def make_service(core, ns: str, name: str, selector: dict | None = None, ports: list[dict] | None = None,
                 cluster_ip: str | None = None, **spec_extra) -> dict:
    spec: dict = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = selector
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    spec.update(spec_extra)
    return core.api_client.sanitize_for_serialization(
        core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                            "spec": spec}))


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def endpoints_of(cluster, ns: str, name: str) -> dict | None:
    r = cluster.kubectl("get", "endpoints", name, "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def slices_of(cluster, ns: str, svc: str) -> list[dict]:
    return get_json(cluster, "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={svc}")["items"]


def ready_ips(ep: dict | None) -> set[str]:
    return {a["ip"] for ss in (ep or {}).get("subsets") or [] for a in ss.get("addresses") or []}


def not_ready_ips(ep: dict | None) -> set[str]:
    return {a["ip"] for ss in (ep or {}).get("subsets") or [] for a in ss.get("notReadyAddresses") or []}


def slice_endpoints(slices: list[dict]) -> dict[str, dict]:
    return {e["addresses"][0]: e for s in slices for e in s.get("endpoints") or []}


@pytest.mark.conformance("Service, endpoints")
def test_endpoints_follow_pods_and_readiness(cluster, ns, core):
    """Given a service with no pods, its endpoints are empty; pods appear, go unready, go away."""
    make_service(core, ns, "web", selector={"app": "web"}, ports=[{"port": 80, "targetPort": 80}])
    ep = wait_for(lambda: endpoints_of(cluster, ns, "web"))
    assert not ep.get("subsets")
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

    make_pod(core, ns, "pod1", "10.42.0.11", ports=[{"containerPort": 80}])
    ep = wait_for(lambda: (e := endpoints_of(cluster, ns, "web")) and ready_ips(e) == {"10.42.0.11"} and e)
    ss = ep["subsets"][0]
    assert ss["ports"] == [{"port": 80, "protocol": "TCP"}]
    addr = ss["addresses"][0]
    assert addr["nodeName"] == NODE
    assert addr["targetRef"]["kind"] == "Pod" and addr["targetRef"]["name"] == "pod1"

    make_pod(core, ns, "pod2", "10.42.0.12", ports=[{"containerPort": 80}])
    wait_for(lambda: ready_ips(endpoints_of(cluster, ns, "web")) == {"10.42.0.11", "10.42.0.12"})
    out = cluster.kubectl("get", "endpoints", "web", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert out[1].split()[:2] == ["web", "10.42.0.11:80,10.42.0.12:80"]

    # readiness lost: the address moves to notReadyAddresses, the slice marks it not ready but serving=false
    set_pod_status(core, ns, "pod2", "10.42.0.12", ready=False)
    wait_for(lambda: not_ready_ips(endpoints_of(cluster, ns, "web")) == {"10.42.0.12"})
    eps = wait_for(lambda: (e := slice_endpoints(slices_of(cluster, ns, "web"))).get("10.42.0.12", {})
                   .get("conditions", {}).get("ready") is False and e)
    assert eps["10.42.0.12"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert eps["10.42.0.11"]["conditions"] == {"ready": True, "serving": True, "terminating": False}

    core.delete_namespaced_pod("pod2", ns, grace_period_seconds=0)
    wait_for(lambda: (e := endpoints_of(cluster, ns, "web")) and ready_ips(e) == {"10.42.0.11"}
             and not not_ready_ips(e))
    core.delete_namespaced_pod("pod1", ns, grace_period_seconds=0)
    wait_for(lambda: not (endpoints_of(cluster, ns, "web") or {}).get("subsets"))
    # the slice falls back to an empty placeholder
    wait_for(lambda: [s for s in slices_of(cluster, ns, "web") if not s.get("endpoints") and not s.get("ports")]
             and len(slices_of(cluster, ns, "web")) == 1)


@pytest.mark.conformance("EndpointSlice API")
def test_endpointslices_for_pods_matching_a_service(cluster, ns, core):
    """The discovery group serves endpointslices, and the controller writes labelled, owned slices."""
    groups = json.loads(cluster.kubectl("get", "--raw", "/apis/discovery.k8s.io").stdout)
    assert "discovery.k8s.io/v1" in [v["groupVersion"] for v in groups["versions"]]
    res = json.loads(cluster.kubectl("get", "--raw", "/apis/discovery.k8s.io/v1").stdout)
    assert "endpointslices" in [r["name"] for r in res["resources"]]

    svc = make_service(core, ns, "web", selector={"app": "web"},
                       ports=[{"name": "http", "port": 80, "targetPort": "http"}])
    make_pod(core, ns, "a", "10.42.1.1", ports=[{"name": "http", "containerPort": 8080}])
    slices = wait_for(lambda: (s := slices_of(cluster, ns, "web")) and slice_endpoints(s).get("10.42.1.1") and s)
    assert len(slices) == 1
    s = slices[0]
    assert s["metadata"]["name"].startswith("web-")
    assert s["metadata"]["labels"] == {"kubernetes.io/service-name": "web",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": svc["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    ep = s["endpoints"][0]
    assert ep["nodeName"] == NODE and ep["targetRef"]["name"] == "a"
    assert "endpoints.kubernetes.io/last-change-trigger-time" in s["metadata"]["annotations"]

    out = cluster.kubectl("get", "endpointslices", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert out[1].split()[1:4] == ["IPv4", "8080", "10.42.1.1"]

    # deleting the service takes its slices with it (garbage collection through the ownerReference)
    core.delete_namespaced_service("web", ns)
    wait_for(lambda: not slices_of(cluster, ns, "web") and endpoints_of(cluster, ns, "web") is None)


def test_named_target_port_resolved_per_pod(cluster, ns, core):
    """A named targetPort resolves per pod; a pod without that port is left out for that port."""
    make_service(core, ns, "multi", selector={"app": "web"},
                 ports=[{"name": "http", "port": 80, "targetPort": "web"},
                        {"name": "metrics", "port": 9090, "targetPort": 9090}])
    make_pod(core, ns, "p8080", "10.42.2.1", ports=[{"name": "web", "containerPort": 8080}])
    make_pod(core, ns, "p9000", "10.42.2.2", ports=[{"name": "web", "containerPort": 9000}])
    make_pod(core, ns, "pnone", "10.42.2.3", ports=[{"name": "other", "containerPort": 7000}])

    def per_port() -> dict:
        ep = endpoints_of(cluster, ns, "multi") or {}
        out: dict = {}
        for ss in ep.get("subsets") or []:
            for p in ss.get("ports") or []:
                out.setdefault(p["name"], set()).update((a["ip"], p["port"]) for a in ss.get("addresses") or [])
        return out

    want = {"http": {("10.42.2.1", 8080), ("10.42.2.2", 9000)},
            "metrics": {("10.42.2.1", 9090), ("10.42.2.2", 9090), ("10.42.2.3", 9090)}}
    wait_for(lambda: per_port() == want)
    # slices group endpoints by their resolved port set
    slices = wait_for(lambda: (s := slices_of(cluster, ns, "multi")) and
                      sum(len(x.get("endpoints") or []) for x in s) == 3 and s)
    by_ports = {tuple(sorted((p["name"], p["port"]) for p in s.get("ports") or [])):
                sorted(e["addresses"][0] for e in s["endpoints"]) for s in slices}
    assert by_ports == {(("http", 8080), ("metrics", 9090)): ["10.42.2.1"],
                        (("http", 9000), ("metrics", 9090)): ["10.42.2.2"],
                        (("metrics", 9090),): ["10.42.2.3"]}


def test_publish_not_ready_addresses(cluster, ns, core):
    make_service(core, ns, "eager", selector={"app": "web"}, publishNotReadyAddresses=True)
    make_pod(core, ns, "slow", "10.42.3.1", ready=False, ports=[{"containerPort": 8080}])
    wait_for(lambda: ready_ips(endpoints_of(cluster, ns, "eager")) == {"10.42.3.1"})
    eps = wait_for(lambda: slice_endpoints(slices_of(cluster, ns, "eager")))
    assert eps["10.42.3.1"]["conditions"] == {"ready": True, "serving": False, "terminating": False}


def test_headless_service_hostnames(cluster, ns, core):
    """Pods whose subdomain names the service publish their hostname; others do not."""
    make_service(core, ns, "db", selector={"app": "db"}, cluster_ip="None",
                 ports=[{"name": "pg", "port": 5432}])
    make_pod(core, ns, "db-0", "10.42.4.1", labels={"app": "db"}, hostname="db-0", subdomain="db")
    make_pod(core, ns, "db-x", "10.42.4.2", labels={"app": "db"}, hostname="db-x", subdomain="other")
    ep = wait_for(lambda: (e := endpoints_of(cluster, ns, "db")) and len(ready_ips(e)) == 2 and e)
    addrs = {a["ip"]: a for a in ep["subsets"][0]["addresses"]}
    assert addrs["10.42.4.1"]["hostname"] == "db-0"
    assert "hostname" not in addrs["10.42.4.2"]
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    slices = wait_for(lambda: (s := slices_of(cluster, ns, "db")) and len(slice_endpoints(s)) == 2 and s)
    eps = slice_endpoints(slices)
    assert eps["10.42.4.1"]["hostname"] == "db-0" and "hostname" not in eps["10.42.4.2"]
    assert slices[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


@pytest.mark.conformance("EndpointSlice Mirroring")
def test_selectorless_service_keeps_manual_endpoints_and_is_mirrored(cluster, ns, core):
    make_service(core, ns, "external", ports=[{"name": "http", "port": 80, "targetPort": 8080}])
    core.create_namespaced_endpoints(ns, {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "labels": {"team": "a"}},
        "subsets": [{"addresses": [{"ip": "10.1.1.1"}], "ports": [{"name": "http", "port": 8080}]}]})
    s = wait_for(lambda: slices_of(cluster, ns, "external"))[0]
    assert s["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "external",
                                       "endpointslice.kubernetes.io/managed-by":
                                       "endpointslicemirroring-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert s["endpoints"] == [{"addresses": ["10.1.1.1"], "conditions": {"ready": True}}]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    core.patch_namespaced_endpoints("external", ns, {"subsets": [
        {"addresses": [{"ip": "10.1.1.2"}], "ports": [{"name": "http", "port": 8081}]}]})
    wait_for(lambda: (x := slices_of(cluster, ns, "external")) and len(x) == 1
             and x[0]["endpoints"][0]["addresses"] == ["10.1.1.2"] and x[0]["ports"][0]["port"] == 8081)
    time.sleep(1)  # the endpoints controller must leave them alone
    assert ready_ips(endpoints_of(cluster, ns, "external")) == {"10.1.1.2"}

    core.delete_namespaced_endpoints("external", ns)
    wait_for(lambda: not slices_of(cluster, ns, "external"))


@pytest.mark.conformance("EndpointSlice API")
def test_kubernetes_service_endpoints_and_slice_point_at_apiserver(cluster):
    ep = get_json(cluster, "endpoints", "kubernetes", "-n", "default")
    port = ep["subsets"][0]["ports"][0]["port"]
    assert port == cluster.port
    s = wait_for(lambda: slices_of(cluster, "default", "kubernetes"))
    assert [x["metadata"]["name"] for x in s] == ["kubernetes"]
    assert s[0]["endpoints"][0]["addresses"] == [ep["subsets"][0]["addresses"][0]["ip"]]
    assert s[0]["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]


def test_describe_service_shows_endpoints(cluster, ns, core):
    make_service(core, ns, "web", selector={"app": "web"})
    make_pod(core, ns, "d1", "10.42.5.1", ports=[{"containerPort": 8080}])
    wait_for(lambda: slice_endpoints(slices_of(cluster, ns, "web")))
    out = wait_for(lambda: "10.42.5.1:8080" in (o := cluster.kubectl("describe", "svc", "web", "-n", ns).stdout) and o)
    line = next(x for x in out.splitlines() if x.startswith("Endpoints:"))
    assert line.split() == ["Endpoints:", "10.42.5.1:8080"]


@pytest.mark.slow
def test_thousand_pods_truncate_endpoints_and_fill_slices_of_100(cluster, ns, core):
    n = 1005
    make_service(core, ns, "big", selector={"app": "big"})

    def one(i: int) -> None:
        make_pod(core, ns, f"p{i}", f"10.44.{i // 250}.{i % 250 + 1}", labels={"app": "big"},
                 ports=[{"containerPort": 8080}])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    ep = wait_for(lambda: (e := endpoints_of(cluster, ns, "big")) and
                  (e["metadata"].get("annotations") or {}).get("endpoints.kubernetes.io/over-capacity") and e,
                  timeout=300)
    assert ep["metadata"]["annotations"]["endpoints.kubernetes.io/over-capacity"] == "truncated"
    assert len(ready_ips(ep)) == 1000
    slices = wait_for(lambda: (s := slices_of(cluster, ns, "big")) and
                      sum(len(x.get("endpoints") or []) for x in s) == n and s, timeout=300)
    sizes = sorted(len(x["endpoints"]) for x in slices)
    assert max(sizes) == 100 and len(slices) == 11, sizes
    assert len(slice_endpoints(slices)) == n

    # back under capacity: the annotation goes away
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: core.delete_namespaced_pod(f"p{i}", ns, grace_period_seconds=0), range(10)))
    wait_for(lambda: "endpoints.kubernetes.io/over-capacity" not in
             ((endpoints_of(cluster, ns, "big") or {}).get("metadata", {}).get("annotations") or {})
             and len(ready_ips(endpoints_of(cluster, ns, "big"))) == n - 10, timeout=60)
