"""Course, first contact with kubectl: given a fresh kubelite with three simulated nodes, when a learner
types the exercises of "First contact with kubectl" (get/describe nodes, api-resources, explain,
services, pods, namespaces, kube-public, kube-node-lease) unmodified, then the output has upstream
1.32's columns, words and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.course_support import (
    UPSTREAM_API_RESOURCES,
    UPSTREAM_API_VERSIONS,
    Shell,
    start_simulated,
    table,
)

NODE_COLUMNS = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
NODE_WIDE = NODE_COLUMNS + ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]


@pytest.fixture(scope="module")
def cluster1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_simulated(tmp_path_factory, 3)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sh(cluster1: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """The learner's terminal, in the default namespace as in the course (nothing here creates objects)."""
    return Shell(cluster1, str(tmp_path_factory.mktemp("course1")))


def test_get_nodes_all_forms(sh: Shell):
    outs = [sh.out(f"kubectl get {form}") for form in ("node", "no", "nodes")]
    for out in outs:
        names, rows = table(out)
        assert names == NODE_COLUMNS, out
        assert len(rows) == 3, out
        assert {r["STATUS"] for r in rows} == {"Ready"}, out
        assert all(r["ROLES"] == "<none>" and r["VERSION"].startswith("v1.32.") for r in rows), out
    strip_age = [[(r["NAME"], r["STATUS"]) for r in table(o)[1]] for o in outs]
    assert strip_age[0] == strip_age[1] == strip_age[2]


def test_get_nodes_wide_yaml_json(sh: Shell):
    names, rows = table(sh.out("kubectl get nodes -o wide"))
    assert names == NODE_WIDE
    assert all(r["EXTERNAL-IP"] == "<none>" and r["INTERNAL-IP"] for r in rows)
    y = sh.out("kubectl get no -o yaml")
    # "See that kind: List at the end? It's the type of our result!"
    assert y.splitlines()[0] == "apiVersion: v1"
    assert "\nkind: List\nmetadata:\n  resourceVersion: \"\"\n" in y, y[-200:]
    assert y.count("- apiVersion: v1\n  kind: Node\n") == 3
    out = sh.out('kubectl get nodes -o json | jq -c ".items[] | {name:.metadata.name} + .status.capacity"')
    caps = [json.loads(line) for line in out.splitlines()]
    assert len(caps) == 3
    for cap in caps:
        assert {"name", "cpu", "memory", "pods", "ephemeral-storage"} <= set(cap), cap


def test_describe_node_forms(sh: Shell):
    node = table(sh.out("kubectl get nodes"))[1][0]["NAME"]
    a = sh.out(f"kubectl describe node/{node}")
    b = sh.out(f"kubectl describe node {node}")
    for out in (a, b):
        assert out.startswith(f"Name:               {node}\n"), out[:200]
        for line in ("Roles:              <none>", "Taints:             <none>", "Unschedulable:      false",
                     "Conditions:", "Addresses:", "Capacity:", "Allocatable:", "System Info:", "PodCIDR:",
                     "Non-terminated Pods:", "Allocated resources:", "Events:"):
            assert line in out, f"{line!r} missing from describe node:\n{out}"
        assert "KubeletReady                 kubelet is posting ready status" in out
    # "It is possible to provide a resource name prefix (all matching objects will be displayed)"
    prefix = sh.out(f"kubectl describe node {node[:-1]}")
    assert prefix.count("\nName:") + prefix.startswith("Name:") == 3, prefix[:300]


def test_api_resources_core_kinds(sh: Shell):
    names, rows = table(sh.out("kubectl api-resources"))
    assert names == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    have = {(r["NAME"], r["SHORTNAMES"], r["APIVERSION"], r["NAMESPACED"], r["KIND"]) for r in rows}
    # the kinds the course itself uses
    for want in [("nodes", "no", "v1", "false", "Node"), ("services", "svc", "v1", "true", "Service"),
                 ("pods", "po", "v1", "true", "Pod"), ("namespaces", "ns", "v1", "false", "Namespace"),
                 ("endpoints", "ep", "v1", "true", "Endpoints"), ("configmaps", "cm", "v1", "true", "ConfigMap"),
                 ("secrets", "", "v1", "true", "Secret"),
                 ("deployments", "deploy", "apps/v1", "true", "Deployment"),
                 ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
                 ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
                 ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
                 ("cronjobs", "cj", "batch/v1", "true", "CronJob"), ("jobs", "", "batch/v1", "true", "Job"),
                 ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"),
                 ("leases", "", "coordination.k8s.io/v1", "true", "Lease")]:
        assert want in have, f"{want} missing from kubectl api-resources"


def test_api_resources_match_upstream(sh: Shell):
    rows = table(sh.out("kubectl api-resources"))[1]
    have = {(r["NAME"], r["SHORTNAMES"], r["APIVERSION"], r["NAMESPACED"], r["KIND"]) for r in rows}
    missing = sorted(UPSTREAM_API_RESOURCES - have)
    assert not missing, f"kubectl api-resources lacks {len(missing)} upstream resources: {missing}"


def test_api_versions_match_upstream(sh: Shell):
    have = sh.out("kubectl api-versions").split()
    assert have == UPSTREAM_API_VERSIONS, f"missing {sorted(set(UPSTREAM_API_VERSIONS) - set(have))}"


def test_explain_node_and_pod(sh: Shell):
    node = sh.out("kubectl explain node")
    assert node.startswith("KIND:       Node\nVERSION:    v1\n\nDESCRIPTION:\n"), node[:200]
    for field in ("apiVersion\t<string>", "kind\t<string>", "metadata\t<ObjectMeta>", "spec\t<NodeSpec>",
                  "status\t<NodeStatus>"):
        assert field in node
    spec = sh.out("kubectl explain node.spec")
    assert "FIELD: spec <NodeSpec>" in spec and "podCIDR\t<string>" in spec and "taints\t<[]Taint>" in spec
    rec = sh.out("kubectl explain node --recursive")
    assert "    podCIDRs\t<[]string>" in rec and "      effect\t<string> -required-" in rec
    assert "FIELD: volumes <[]Volume>" in sh.out("kubectl explain pod.spec.volumes")
    prec = sh.out("kubectl explain pod.spec --recursive")
    assert "  containers\t<[]Container> -required-" in prec and "    livenessProbe\t<Probe>" in prec
    assert "FIELD: spec <DeploymentSpec>" in sh.out("kubectl explain deployment.spec")
    err = sh.fails("kubectl explain node.nope")
    assert 'error: field "nope" does not exist' in err, err


def test_services_pods_and_resource_name_forms(sh: Shell):
    for form in ("services", "svc", "service"):
        names, rows = table(sh.out(f"kubectl get {form}"))
        assert names == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
        # "There is already one service on our cluster: the Kubernetes API itself."
        assert [(r["NAME"], r["TYPE"], r["PORT(S)"]) for r in rows] == [("kubernetes", "ClusterIP", "443/TCP")]
    r = sh.run("kubectl get pods")
    assert r.stdout == "" and r.stderr == "No resources found in default namespace.\n"
    # "Endpoints only have a plural form"
    err = sh.fails("kubectl get endpoint")
    assert err == 'error: the server doesn\'t have a resource type "endpoint"\n', err
    names, rows = table(sh.out("kubectl get endpoints"))
    assert names == ["NAME", "ENDPOINTS", "AGE"] and rows[0]["NAME"] == "kubernetes"
    assert table(sh.out("kubectl get ep"))[1][0]["NAME"] == "kubernetes"


def test_namespaces_all_forms(sh: Shell):
    for form in ("namespaces", "namespace", "ns"):
        names, rows = table(sh.out(f"kubectl get {form}"))
        assert names == ["NAME", "STATUS", "AGE"]
        got = {r["NAME"]: r["STATUS"] for r in rows}
        for ns in ("default", "kube-node-lease", "kube-public", "kube-system"):
            assert got.get(ns) == "Active", got
    for cmd in ("kubectl get pods --all-namespaces", "kubectl get pods -A"):
        r = sh.run(cmd)
        if r.stdout:
            assert table(r.stdout)[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        else:
            assert r.stderr == "No resources found\n"
    for cmd in ("kubectl get pods --namespace=kube-system", "kubectl get pods -n kube-system"):
        r = sh.run(cmd)
        assert r.stdout or r.stderr == "No resources found in kube-system namespace.\n"
    # "List the pods in the kube-public namespace: Nothing!"
    r = sh.run("kubectl -n kube-public get pods")
    assert r.stdout == "" and r.stderr == "No resources found in kube-public namespace.\n"


def test_kube_public_cluster_info(sh: Shell):
    names, rows = table(sh.out("kubectl -n kube-public get configmaps"))
    assert names == ["NAME", "DATA", "AGE"]
    assert "cluster-info" in {r["NAME"] for r in rows}
    y = sh.out("kubectl -n kube-public get configmap cluster-info -o yaml")
    assert y.startswith("apiVersion: v1\ndata:\n  kubeconfig: |\n"), y[:200]
    assert "  name: cluster-info\n  namespace: kube-public\n" in y
    assert "certificate-authority-data:" in y and "server: https://" in y


def test_kube_node_lease_one_lease_per_node(sh: Shell):
    names, rows = table(sh.out("kubectl get leases -n kube-node-lease"))
    assert names == ["NAME", "HOLDER", "AGE"]
    nodes = sorted(r["NAME"] for r in table(sh.out("kubectl get nodes"))[1])
    assert sorted(r["NAME"] for r in rows) == nodes
    assert all(r["HOLDER"] == r["NAME"] for r in rows)
