"""PodDisruptionBudget status and blocked evictions, ResourceQuota usage and enforcement."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from conftest import Cluster, _make_cluster
from test_workloads_support import apply, get, make_running, pods, register_node, wait_until


def rs_manifest(name: str, replicas: int) -> str:
    return f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: nginx:1.25}}]
"""


def pdb_status(cluster: Cluster, ns: str, name: str) -> dict:
    return get(cluster, "pdb", name, "-n", ns).get("status") or {}


def evict(cluster: Cluster, ns: str, pod: str) -> tuple[int, str]:
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    core = k8s.CoreV1Api(cluster.api_client())
    body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=pod, namespace=ns))
    try:
        core.create_namespaced_pod_eviction(pod, ns, body)
        return 201, ""
    except ApiException as e:
        return e.status, e.body


@pytest.mark.conformance("PodDisruptionBudget: block an eviction until the PDB is updated to allow it")
def test_pdb_status_and_blocked_eviction(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, rs_manifest("guarded", 3))
    wait_until(lambda: len(pods(cluster, ns, "app=guarded")) == 3, what="3 pods")
    apply(cluster, ns, """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: budget}
spec:
  minAvailable: 3
  selector: {matchLabels: {app: guarded}}
""")
    st = wait_until(lambda: (s := pdb_status(cluster, ns, "budget")).get("observedGeneration") == 1 and s, what="status")
    assert st["currentHealthy"] == 0 and st["desiredHealthy"] == 3 and st["expectedPods"] == 3
    assert st["disruptionsAllowed"] == 0
    cond = st["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "False", "InsufficientPods")
    make_running(cluster, ns, "app=guarded")
    wait_until(lambda: pdb_status(cluster, ns, "budget").get("currentHealthy") == 3, what="3 healthy")
    victim = pods(cluster, ns, "app=guarded")[0]["metadata"]["name"]
    code, body = evict(cluster, ns, victim)
    assert code == 429 and "Cannot evict pod as it would violate the pod's disruption budget." in body

    cluster.kubectl("patch", "pdb", "budget", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
    st = wait_until(lambda: (s := pdb_status(cluster, ns, "budget")).get("disruptionsAllowed") == 1 and s,
                    what="one disruption allowed")
    assert st["observedGeneration"] == 2 and st["conditions"][0]["reason"] == "SufficientPods"
    row = cluster.kubectl("get", "pdb", "budget", "-n", ns, "--no-headers").stdout.split()
    assert row[1:4] == ["2", "N/A", "1"]
    code, _ = evict(cluster, ns, victim)
    assert code == 201


@pytest.mark.conformance("PodDisruptionBudget: Status updates")
def test_pdb_max_unavailable_uses_the_controllers_scale(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, rs_manifest("scaled", 4))
    apply(cluster, ns, """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pct}
spec:
  maxUnavailable: 25%
  selector: {matchLabels: {app: scaled}}
""")
    wait_until(lambda: len(pods(cluster, ns, "app=scaled")) == 4, what="4 pods")
    make_running(cluster, ns, "app=scaled")
    st = wait_until(lambda: (s := pdb_status(cluster, ns, "pct")).get("currentHealthy") == 4 and s, what="healthy")
    assert st["expectedPods"] == 4 and st["desiredHealthy"] == 3 and st["disruptionsAllowed"] == 1


@pytest.fixture
def drain_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory)
    c.start()
    yield c
    c.stop()


@pytest.mark.slow
def test_kubectl_drain_respects_the_budget(drain_cluster: Cluster) -> None:
    c = drain_cluster
    ns = "drain-" + uuid.uuid4().hex[:6]
    c.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    register_node(c, "drain-1")
    for i in range(2):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"app-{i}", "namespace": ns, "labels": {"app": "drained"}},
               "spec": {"nodeName": "drain-1", "containers": [{"name": "main", "image": "nginx:1.25"}]}}
        c.kubectl("create", "-f", "-", input=json.dumps(pod))
    make_running(c, ns, "app=drained")
    c.kubectl("create", "pdb", "keep", "-n", ns, "--selector=app=drained", "--min-available=2")
    wait_until(lambda: (make_running(c, ns, "app=drained") or True) and
               pdb_status(c, ns, "keep").get("currentHealthy") == 2, timeout=60, what="pdb status")
    r = c.kubectl("drain", "drain-1", "--force", "--timeout=5s", "--grace-period=0", check=False, timeout=60)
    assert r.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in r.stdout + r.stderr
    assert get(c, "node", "drain-1")["spec"].get("unschedulable") is True  # cordoned all the same
    assert len(pods(c, ns, "app=drained")) == 2
    c.kubectl("patch", "pdb", "keep", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":0}}')
    wait_until(lambda: pdb_status(c, ns, "keep").get("disruptionsAllowed") == 2, what="allowed")
    c.kubectl("drain", "drain-1", "--force", "--timeout=30s", "--grace-period=0", timeout=60)
    wait_until(lambda: not pods(c, ns, "app=drained"), what="drained")


# ------------------------------------------------------------------ ResourceQuota
def quota_status(cluster: Cluster, ns: str, name: str) -> dict:
    return get(cluster, "quota", name, "-n", ns).get("status") or {}


@pytest.mark.conformance("ResourceQuota, object count quota, configmap")
def test_quota_usage_follows_objects(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "quota", "counts", "-n", ns,
                    "--hard=pods=5,configmaps=4,secrets=5,services=3,count/deployments.apps=2,requests.cpu=2,"
                    "requests.memory=1Gi,limits.memory=2Gi,persistentvolumeclaims=2,resourcequotas=1")
    st = wait_until(lambda: quota_status(cluster, ns, "counts").get("used"), what="status computed")
    st = quota_status(cluster, ns, "counts")
    assert st["hard"]["pods"] == "5" and st["used"]["pods"] == "0"
    assert st["used"]["resourcequotas"] == "1"
    base_cm = int(st["used"]["configmaps"])  # kube-root-ca.crt, if the publisher runs
    cluster.kubectl("create", "configmap", "cm1", "-n", ns)
    cluster.kubectl("create", "deployment", "d1", "--image=nginx:1.25", "--replicas=0", "-n", ns)
    cluster.kubectl("create", "service", "clusterip", "s1", "--tcp=80:80", "-n", ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sized", "namespace": ns},
           "spec": {"containers": [{"name": "main", "image": "nginx:1.25", "resources": {
               "requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    want = {"configmaps": str(base_cm + 1), "count/deployments.apps": "1", "services": "1", "pods": "1",
            "requests.cpu": "250m", "requests.memory": "64Mi", "limits.memory": "128Mi"}
    wait_until(lambda: all(quota_status(cluster, ns, "counts")["used"].get(k) == v for k, v in want.items()),
               what=f"usage {want}")
    cluster.kubectl("delete", "configmap", "cm1", "-n", ns)
    cluster.kubectl("delete", "pod", "sized", "-n", ns, "--wait=false")
    wait_until(lambda: quota_status(cluster, ns, "counts")["used"]["configmaps"] == str(base_cm) and
               quota_status(cluster, ns, "counts")["used"]["pods"] == "0" and
               quota_status(cluster, ns, "counts")["used"]["requests.cpu"] == "0", what="usage released")
    out = cluster.kubectl("describe", "quota", "counts", "-n", ns).stdout
    assert "requests.memory" in out and "1Gi" in out


@pytest.mark.conformance("ResourceQuota, quota scope, BestEffort and NotBestEffort scope")
def test_quota_scopes(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "quota", "be", "-n", ns, "--hard=pods=5", "--scopes=BestEffort")
    cluster.kubectl("create", "quota", "nbe", "-n", ns, "--hard=pods=5", "--scopes=NotBestEffort")
    wait_until(lambda: quota_status(cluster, ns, "be").get("used") and quota_status(cluster, ns, "nbe").get("used"),
               what="computed")
    cluster.kubectl("run", "plain", "--image=nginx:1.25", "-n", ns)
    wait_until(lambda: quota_status(cluster, ns, "be")["used"]["pods"] == "1", what="best effort counted")
    assert quota_status(cluster, ns, "nbe")["used"]["pods"] == "0"


def _quota_admission_registered() -> bool:
    from kubelite.apiserver.admission import default_plugins
    from kubelite.apiserver.admission.resource_quota import ResourceQuotaAdmission
    from kubelite.apiserver.config import ServerConfig

    return any(isinstance(p, ResourceQuotaAdmission) for p in default_plugins(ServerConfig()))


@pytest.mark.skipif(not _quota_admission_registered(), reason="ResourceQuota admission plugin not registered yet")
@pytest.mark.conformance("ResourceQuota, object count quota, pod")
def test_quota_rejects_creates_beyond_hard(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "quota", "q", "-n", ns, "--hard=pods=2,requests.cpu=1")
    wait_until(lambda: quota_status(cluster, ns, "q").get("used"), what="computed")

    def run(name: str, cpu: str):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"containers": [{"name": "main", "image": "nginx:1.25",
                                        "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}
        return cluster.kubectl("create", "-f", "-", input=json.dumps(pod), check=False)

    assert run("p1", "400m").returncode == 0
    r = run("big", "800m")
    assert r.returncode != 0
    assert ('pods "big" is forbidden: exceeded quota: q, requested: requests.cpu=800m, used: requests.cpu=400m, '
            'limited: requests.cpu=1') in r.stderr
    assert run("p2", "400m").returncode == 0
    r = run("p3", "100m")
    assert 'pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2' in r.stderr
    assert quota_status(cluster, ns, "q")["used"]["pods"] == "2"
