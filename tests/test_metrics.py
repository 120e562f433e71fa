"""The resource metrics API on simulated nodes: given a kubelite with two simulated nodes and a 1 s metric
resolution, when pods run there, then `kubectl top node|pod` (with --containers, -A, -l, --sort-by) prints
their usage as it would against metrics-server, metrics.k8s.io objects have metrics-server's shape, and
pods without metrics give kubectl's errors. Simulated usage is deterministic (kubelite.runtime.simulated_stats):
a tenth of the CPU request and half the memory request, or what the pod's annotations say."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.conftest import _make_cluster
from tests.test_controllers_support import wait_until


@pytest.fixture(scope="module")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory):
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "2", "--metric-resolution", "1s"])
    c.start()
    yield c
    c.stop()


def _deployment(name: str, replicas: int, requests: dict, annotations: dict | None = None) -> str:
    template: dict = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
        {"name": "main", "image": "nginx", "resources": {"requests": requests}},
        {"name": "side", "image": "busybox", "resources": {"requests": requests}}]}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": template}})


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_kubectl_top_pods_and_nodes(metrics_cluster):
    c = metrics_cluster
    ns = "m-" + uuid.uuid4().hex[:6]
    c.kubectl("create", "namespace", ns)
    c.kubectl("apply", "-n", ns, "-f", "-", input=_deployment(
        "hot", 1, {"cpu": "100m", "memory": "64Mi"},
        {"kubelite.io/simulated-cpu-usage": "300m", "kubelite.io/simulated-memory-usage": "100Mi"}))
    c.kubectl("apply", "-n", ns, "-f", "-", input=_deployment("cold", 2, {"cpu": "100m", "memory": "512Mi"}))

    top = wait_until(lambda: len(r := _rows(c.kubectl("top", "pod", "-n", ns, check=False).stdout)) == 4 and r,
                     timeout=60, what="metrics of 3 pods")
    assert top[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    usage = {row[0].split("-")[0]: tuple(row[1:]) for row in top[1:]}
    assert usage == {"hot": ("600m", "200Mi"), "cold": ("20m", "512Mi")}  # two containers each

    by_cpu = _rows(c.kubectl("top", "pod", "-n", ns, "--sort-by=cpu").stdout)
    by_memory = _rows(c.kubectl("top", "pod", "-n", ns, "--sort-by=memory").stdout)
    assert by_cpu[1][0].startswith("hot-") and by_memory[1][0].startswith("cold-")
    cold = _rows(c.kubectl("top", "pod", "-n", ns, "-l", "app=cold").stdout)
    assert len(cold) == 3 and all(r[0].startswith("cold-") for r in cold[1:])
    containers = _rows(c.kubectl("top", "pod", "-n", ns, "-l", "app=hot", "--containers").stdout)
    assert containers[0] == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sorted(tuple(r[1:]) for r in containers[1:]) == [("main", "300m", "100Mi"), ("side", "300m", "100Mi")]
    everywhere = _rows(c.kubectl("top", "pod", "-A").stdout)
    assert everywhere[0] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sum(1 for r in everywhere[1:] if r[0] == ns) == 3

    nodes = _rows(c.kubectl("top", "node").stdout)
    assert nodes[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert [r[0] for r in nodes[1:]] == ["sim-node-0", "sim-node-1"]
    # each node: 50m and 256Mi of its own plus its pods'; 32 cores and 256Gi of capacity
    assert sum(int(r[1].rstrip("m")) for r in nodes[1:]) == 2 * 50 + 600 + 2 * 20
    assert sum(int(r[3].rstrip("Mi")) for r in nodes[1:]) == 2 * 256 + 200 + 2 * 512
    assert all(r[2] == "1%" or r[2] == "0%" or r[2] == "2%" for r in nodes[1:])


def test_metrics_objects_have_metrics_servers_shape(metrics_cluster):
    c = metrics_cluster
    svc = json.loads(c.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json").stdout)
    assert svc["spec"]["group"] == "metrics.k8s.io" and svc["spec"]["version"] == "v1beta1"
    assert {"type": "Available", "status": "True"}.items() <= svc["status"]["conditions"][0].items()
    groups = json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1").stdout)
    assert {(r["name"], r["singularName"], r["kind"], tuple(r["verbs"])) for r in groups["resources"]} == {
        ("nodes", "", "NodeMetrics", ("get", "list")), ("pods", "", "PodMetrics", ("get", "list"))}

    node = wait_until(lambda: json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/sim-node-0",
                                                   check=False).stdout or "{}").get("usage") and
                      json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/sim-node-0").stdout),
                      timeout=30, what="node metrics")
    assert node["kind"] == "NodeMetrics" and node["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert node["metadata"]["name"] == "sim-node-0" and node["metadata"]["labels"]["kubelite.io/simulated"] == "true"
    assert re.fullmatch(r"\d+(n|u|m)?", node["usage"]["cpu"]) and re.fullmatch(r"\d+(Ki|Mi|Gi)?", node["usage"]["memory"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", node["timestamp"])
    assert re.fullmatch(r"[0-9.]+m?s", node["window"]), node["window"]

    listed = json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector="
                                  "kubernetes.io%2Fhostname%3Dsim-node-1").stdout)
    assert listed["kind"] == "NodeMetricsList" and [n["metadata"]["name"] for n in listed["items"]] == ["sim-node-1"]
    # the official client reads them as metrics-server's custom objects
    from kubernetes import client

    with c.api_client() as api:
        got = client.CustomObjectsApi(api).list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert sorted(n["metadata"]["name"] for n in got["items"]) == ["sim-node-0", "sim-node-1"]
    table = _rows(c.kubectl("get", "nodes.metrics.k8s.io").stdout)
    assert table[0] == ["NAME", "CPU", "MEMORY", "WINDOW"] and [r[0] for r in table[1:]] == ["sim-node-0", "sim-node-1"]

    # read-only, no watch: as metrics-server
    r = c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods?watch=true", check=False)
    assert "MethodNotAllowed" in r.stderr
    r = c.kubectl("delete", "nodes.metrics.k8s.io", "sim-node-0", check=False)
    assert r.returncode != 0 and "MethodNotAllowed" in r.stderr


def test_pods_without_metrics(metrics_cluster):
    c = metrics_cluster
    ns = "m-" + uuid.uuid4().hex[:6]
    c.kubectl("create", "namespace", ns)
    r = c.kubectl("top", "pod", "-n", ns)
    assert r.stdout == "" and r.stderr.strip() == f"No resources found in {ns} namespace."
    r = c.kubectl("top", "pod", "nope", "-n", ns, check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    # bound to a node that does not exist: never runs, never has metrics
    c.kubectl("run", "stuck", "--image=nginx", "-n", ns, "--overrides", '{"spec": {"nodeName": "ghost"}}')
    r = c.kubectl("top", "pod", "-n", ns, check=False)
    assert r.returncode == 1 and r.stderr.strip() == "error: metrics not available yet"
    r = c.kubectl("top", "pod", "stuck", "-n", ns, check=False)
    assert r.stderr.strip() == f'Error from server (NotFound): podmetrics.metrics.k8s.io "{ns}/stuck" not found'
    r = c.kubectl("top", "node", "ghost", check=False)
    assert r.stderr.strip() == 'Error from server (NotFound): nodes "ghost" not found'
